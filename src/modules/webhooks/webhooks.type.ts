import { Field, GraphQLISODateTime, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { valuesConfig } from '../../shared/codes';
import { DELIVERY_ERROR_CODES, DeliveryErrorCode } from './webhook-sender';

/** The job transitions a webhook can receive: `JOB_<state>`. */
export enum WebhookEventType {
  JOB_QUEUED = 'JOB_QUEUED',
  JOB_RUNNING = 'JOB_RUNNING',
  JOB_SUCCEEDED = 'JOB_SUCCEEDED',
  JOB_SUCCEEDED_WITH_ERRORS = 'JOB_SUCCEEDED_WITH_ERRORS',
  JOB_FAILED = 'JOB_FAILED',
  JOB_CANCELLED = 'JOB_CANCELLED',
}
registerEnumType(WebhookEventType, {
  name: 'WebhookEventType',
  description: 'A job entering a state. JOB_QUEUED is also sent when a FAILED job is retried; JOB_RUNNING on every attempt.',
  valuesConfig: {
    JOB_QUEUED: { description: 'The job was queued (also sent when a FAILED job is retried).' },
    JOB_RUNNING: { description: 'A worker started an attempt of the job (sent on every attempt).' },
    JOB_SUCCEEDED: { description: 'The job succeeded.' },
    JOB_SUCCEEDED_WITH_ERRORS: { description: 'The job finished with some rows or items skipped as invalid.' },
    JOB_FAILED: { description: 'The job failed (see its error code).' },
    JOB_CANCELLED: { description: 'The job was cancelled.' },
  },
});

export enum WebhookEventState {
  PENDING = 'PENDING',
  DELIVERED = 'DELIVERED',
  FAILED = 'FAILED',
}
registerEnumType(WebhookEventState, {
  name: 'WebhookEventState',
  description:
    'PENDING: not yet answered with 2xx, more attempts to come. DELIVERED: a 2xx was received. FAILED: SLUICE_WEBHOOK_MAX_ATTEMPTS used up, or refused for good (address, secret).',
  valuesConfig: {
    PENDING: { description: 'Not yet answered with 2xx; more attempts to come.' },
    DELIVERED: { description: 'A 2xx was received.' },
    FAILED: { description: 'SLUICE_WEBHOOK_MAX_ATTEMPTS used up, or refused for good (address, secret).' },
  },
});

registerEnumType(DeliveryErrorCode, {
  name: 'WebhookDeliveryErrorCode',
  description: 'Why a delivery attempt failed.',
  valuesConfig: valuesConfig(DELIVERY_ERROR_CODES),
});

@ObjectType('Webhook', { description: 'An endpoint that receives signed POSTs for job transitions.' })
export class WebhookType {
  @Field(() => ID, { description: 'Webhook id (the `webhookId` of every payload).' })
  id!: string;

  @Field(() => String, { description: 'The client that created it; it receives that client’s jobs (every client’s with allJobs).' })
  clientId!: string;

  @Field(() => String, { description: 'Where events are POSTed.' })
  url!: string;

  @Field(() => [WebhookEventType], { description: 'The event types it receives.' })
  events!: WebhookEventType[];

  @Field(() => String, { nullable: true, description: 'Free text from its creator.' })
  description!: string | null;

  @Field(() => Boolean, { description: 'True: every client’s jobs, while the creator holds ADMIN. False: the creator’s own jobs.' })
  allJobs!: boolean;

  @Field(() => GraphQLISODateTime, { description: 'When it was created.' })
  createdAt!: Date;
}

@ObjectType({ description: 'A new webhook and its signing secret, shown this once.' })
export class CreatedWebhook {
  @Field(() => WebhookType, { description: 'The webhook.' })
  webhook!: WebhookType;

  @Field(() => String, { description: 'HMAC-SHA256 key of the Sluice-Signature header. Store it now: it cannot be read again.' })
  secret!: string;
}

@ObjectType({ description: 'Why a delivery attempt failed.' })
export class WebhookDeliveryError {
  @Field(() => DeliveryErrorCode, { description: 'Stable code.' })
  code!: DeliveryErrorCode;

  @Field(() => String, { description: 'What happened.' })
  message!: string;
}

@ObjectType('WebhookDelivery', { description: 'One POST of an event to a webhook, and its answer.' })
export class WebhookDeliveryType {
  @Field(() => ID, { description: 'Attempt id.' })
  id!: string;

  @Field(() => ID, { description: 'The event (the Sluice-Event-Id header, the same on every attempt).' })
  eventId!: string;

  @Field(() => WebhookEventType, { description: 'Its event type.' })
  eventType!: WebhookEventType;

  @Field(() => WebhookEventState, { description: 'Where the event stands now (after its latest attempt).' })
  eventState!: WebhookEventState;

  @Field(() => ID, { description: 'The job the event is about.' })
  jobId!: string;

  @Field(() => Int, { description: 'Attempt number of this event, from 1.' })
  attempt!: number;

  @Field(() => Boolean, { description: 'True when the receiver answered 2xx.' })
  ok!: boolean;

  @Field(() => Int, { nullable: true, description: 'HTTP status received; null when there was no answer.' })
  statusCode!: number | null;

  @Field(() => Int, { description: 'Time from the request to the end of the (capped) response, in milliseconds.' })
  durationMs!: number;

  @Field(() => WebhookDeliveryError, { nullable: true, description: 'Why it failed; null on success.' })
  error!: WebhookDeliveryError | null;

  @Field(() => String, { nullable: true, description: 'The first SLUICE_WEBHOOK_RESPONSE_MAX_BYTES of the response body.' })
  responseBody!: string | null;

  @Field(() => GraphQLISODateTime, { description: 'When the attempt ended.' })
  at!: Date;
}
