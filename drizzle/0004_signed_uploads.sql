CREATE TYPE "public"."file_upload_state" AS ENUM('PENDING_UPLOAD', 'UPLOADING', 'UPLOADED', 'IMPORTED', 'EXPIRED');--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "upload_state" "file_upload_state";--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "declared_size" bigint;--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "declared_sha256" text;--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "upload_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "upload_token_used_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "uploaded_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "folder" text;--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "tags" text[];--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "metadata" jsonb;--> statement-breakpoint
CREATE INDEX "files_upload_expiry_idx" ON "files" USING btree ("upload_expires_at") WHERE "files"."upload_state" in ('PENDING_UPLOAD', 'UPLOADING', 'UPLOADED');