ALTER TABLE "files" ADD COLUMN "error_summary" jsonb;--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "corrects_file_id" uuid;--> statement-breakpoint
CREATE INDEX "files_corrects_idx" ON "files" USING btree ("corrects_file_id");