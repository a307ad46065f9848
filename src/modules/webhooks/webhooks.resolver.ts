import { Arg, Authorized, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../../server/context';
import { requireViewer } from '../../server/authorize';
import { Role } from '../../shared/roles';
import type { DeliveryErrorCode } from './webhook-sender';
import type { DeliveryRecord, WebhookRecord } from './webhooks.service';
import { CreateWebhookInput } from './webhooks.inputs';
import { CreatedWebhook, WebhookDeliveryType, WebhookType, type WebhookEventState, type WebhookEventType } from './webhooks.type';

function toWebhookType(w: WebhookRecord): WebhookType {
  return {
    id: w.id,
    clientId: w.clientId,
    url: w.url,
    events: w.events as WebhookEventType[],
    description: w.description,
    allJobs: w.allJobs,
    createdAt: w.createdAt,
  };
}

function toDeliveryType(d: DeliveryRecord): WebhookDeliveryType {
  return {
    id: d.id,
    eventId: d.eventId,
    eventType: d.eventType as WebhookEventType,
    eventState: d.eventState as WebhookEventState,
    jobId: d.jobId,
    attempt: d.attempt,
    ok: d.ok,
    statusCode: d.statusCode,
    durationMs: d.durationMs,
    error: d.errorCode ? { code: d.errorCode as DeliveryErrorCode, message: d.errorMessage ?? '' } : null,
    responseBody: d.responseBody,
    at: d.createdAt,
  };
}

@Resolver()
export class WebhooksResolver {
  @Authorized(Role.INGESTOR)
  @Mutation(() => CreatedWebhook, {
    description:
      'Registers an endpoint for your jobs’ transitions. Each event is POSTed as JSON with Sluice-Signature (t=<unix>,v1=<HMAC-SHA256 hex of "<t>.<body>">) and Sluice-Event-Id (the same on every retry) headers, retried with exponential backoff until a 2xx. Returns the signing secret once.',
  })
  async createWebhook(
    @Arg('input', () => CreateWebhookInput, { description: 'The webhook.' }) input: CreateWebhookInput,
    @Ctx() ctx: Context,
  ): Promise<CreatedWebhook> {
    const { webhook, secret } = await ctx.services.webhooks.create(requireViewer(ctx), {
      url: input.url,
      events: input.events,
      description: input.description,
      allJobs: input.allJobs,
    });
    return { webhook: toWebhookType(webhook), secret };
  }

  @Authorized(Role.INGESTOR)
  @Query(() => [WebhookType], { description: 'Your webhooks (every client’s for ADMIN), newest first.' })
  async webhooks(@Ctx() ctx: Context): Promise<WebhookType[]> {
    return (await ctx.services.webhooks.list(requireViewer(ctx))).map(toWebhookType);
  }

  @Authorized(Role.INGESTOR)
  @Mutation(() => WebhookType, { description: 'Deletes a webhook with its delivery history; deliveries not yet made are dropped.' })
  async deleteWebhook(@Arg('id', () => ID, { description: 'Webhook id.' }) id: string, @Ctx() ctx: Context): Promise<WebhookType> {
    return toWebhookType(await ctx.services.webhooks.delete(requireViewer(ctx), id));
  }

  @Authorized(Role.INGESTOR)
  @Query(() => [WebhookDeliveryType], {
    description: 'Delivery attempts of a webhook, newest first: status, duration, error and the start of the response body.',
  })
  async webhookDeliveries(
    @Arg('webhookId', () => ID, { description: 'Webhook id.' }) webhookId: string,
    @Arg('first', () => Int, { defaultValue: 50, description: 'How many attempts, 1-100.' }) first: number,
    @Ctx() ctx: Context,
  ): Promise<WebhookDeliveryType[]> {
    return (await ctx.services.webhooks.deliveries(requireViewer(ctx), webhookId, first)).map(toDeliveryType);
  }
}
