ALTER TABLE "files" ADD COLUMN "ingest_mode" text;--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "delete_missing" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "merge" jsonb;