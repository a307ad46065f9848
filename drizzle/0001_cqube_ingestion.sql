CREATE TYPE "public"."file_kind" AS ENUM('CSV', 'ZIP');--> statement-breakpoint
CREATE TYPE "public"."spec_kind" AS ENUM('EVENT', 'DIMENSION', 'DATASET');--> statement-breakpoint
CREATE TABLE "files" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"kind" "file_kind" NOT NULL,
	"parent_id" uuid,
	"spec_id" uuid,
	"program" text,
	"file_name" text NOT NULL,
	"content_type" text,
	"storage_key" text,
	"size" bigint,
	"sha256" text,
	"job_id" uuid,
	"on_invalid_rows" text DEFAULT 'SKIP' NOT NULL,
	"total_rows" integer,
	"valid_rows" integer,
	"invalid_rows" integer,
	"valid_output_key" text,
	"error_output_key" text,
	"error" jsonb,
	"idempotency_key" text,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "row_errors" (
	"file_id" uuid NOT NULL,
	"line" integer NOT NULL,
	"idx" integer NOT NULL,
	"column" text,
	"code" text NOT NULL,
	"message" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "specs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"version" integer NOT NULL,
	"kind" "spec_kind" NOT NULL,
	"program" text NOT NULL,
	"raw" jsonb NOT NULL,
	"compiled" jsonb NOT NULL,
	"table_name" text NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "specs_table_name_unique" UNIQUE("table_name")
);
--> statement-breakpoint
ALTER TABLE "files" ADD CONSTRAINT "files_spec_id_specs_id_fk" FOREIGN KEY ("spec_id") REFERENCES "public"."specs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "row_errors" ADD CONSTRAINT "row_errors_file_id_files_id_fk" FOREIGN KEY ("file_id") REFERENCES "public"."files"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "files_idempotency_idx" ON "files" USING btree ("created_by","idempotency_key");--> statement-breakpoint
CREATE INDEX "files_created_at_idx" ON "files" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "files_file_name_idx" ON "files" USING btree ("file_name");--> statement-breakpoint
CREATE INDEX "files_parent_idx" ON "files" USING btree ("parent_id");--> statement-breakpoint
CREATE UNIQUE INDEX "row_errors_pk" ON "row_errors" USING btree ("file_id","line","idx");--> statement-breakpoint
CREATE UNIQUE INDEX "specs_name_version_idx" ON "specs" USING btree ("name","version");