ALTER TABLE "files" ADD COLUMN "dialect" jsonb;--> statement-breakpoint
ALTER TABLE "bulk_processes" ADD COLUMN "dialect" jsonb;