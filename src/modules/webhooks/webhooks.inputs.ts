import { Field, InputType } from 'type-graphql';
import { WebhookEventType } from './webhooks.type';

@InputType({ description: 'A webhook to create.' })
export class CreateWebhookInput {
  @Field(() => String, {
    description:
      'http(s) URL events are POSTed to (at most 2048 characters, no credentials). Private, loopback and link-local addresses are refused unless SLUICE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES is set.',
  })
  url!: string;

  @Field(() => [WebhookEventType], {
    nullable: true,
    description: 'Event types to receive; default the terminal ones (JOB_SUCCEEDED, JOB_SUCCEEDED_WITH_ERRORS, JOB_FAILED, JOB_CANCELLED).',
  })
  events!: WebhookEventType[] | null;

  @Field(() => String, { nullable: true, description: 'Free text, at most 500 characters.' })
  description!: string | null;

  @Field(() => Boolean, { defaultValue: false, description: 'ADMIN only: receive every client’s jobs, not only your own.' })
  allJobs!: boolean;
}
