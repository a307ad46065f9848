CREATE TYPE "public"."bulk_kind" AS ENUM('LOCATION', 'ORGANISATION', 'USER');--> statement-breakpoint
CREATE TYPE "public"."location_type" AS ENUM('STATE', 'DISTRICT', 'BLOCK', 'CLUSTER', 'SCHOOL');--> statement-breakpoint
CREATE TYPE "public"."organisation_status" AS ENUM('ACTIVE', 'INACTIVE');--> statement-breakpoint
CREATE TYPE "public"."organisation_type" AS ENUM('SCHOOL', 'BOARD');--> statement-breakpoint
CREATE TYPE "public"."user_type" AS ENUM('TEACHER', 'OTHER');--> statement-breakpoint
CREATE TABLE "bulk_processes" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"kind" "bulk_kind" NOT NULL,
	"location_type" "location_type",
	"file_name" text NOT NULL,
	"storage_key" text NOT NULL,
	"size" bigint NOT NULL,
	"sha256" text NOT NULL,
	"total_rows" integer NOT NULL,
	"job_id" uuid,
	"idempotency_key" text,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "bulk_results" (
	"process_id" uuid NOT NULL,
	"line" integer NOT NULL,
	"ok" boolean NOT NULL,
	"operation" text,
	"entity_id" text,
	"error_code" text,
	"error_column" text,
	"error_message" text,
	"data" jsonb NOT NULL,
	CONSTRAINT "bulk_results_process_id_line_pk" PRIMARY KEY("process_id","line")
);
--> statement-breakpoint
CREATE TABLE "directory_users" (
	"id" text PRIMARY KEY DEFAULT gen_random_uuid()::text NOT NULL,
	"name" text NOT NULL,
	"phone" text,
	"email" text,
	"organisation_id" text,
	"user_type" "user_type" DEFAULT 'TEACHER' NOT NULL,
	"roles" text[] DEFAULT '{}'::text[] NOT NULL,
	"external_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "directory_users_contact_check" CHECK ("directory_users"."phone" is not null or "directory_users"."email" is not null)
);
--> statement-breakpoint
CREATE TABLE "locations" (
	"id" text PRIMARY KEY DEFAULT gen_random_uuid()::text NOT NULL,
	"code" text NOT NULL,
	"name" text NOT NULL,
	"type" "location_type" NOT NULL,
	"parent_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "organisations" (
	"id" text PRIMARY KEY DEFAULT gen_random_uuid()::text NOT NULL,
	"name" text NOT NULL,
	"external_id" text,
	"location_id" text,
	"status" "organisation_status" DEFAULT 'ACTIVE' NOT NULL,
	"description" text,
	"type" "organisation_type" DEFAULT 'SCHOOL' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "bulk_results" ADD CONSTRAINT "bulk_results_process_id_bulk_processes_id_fk" FOREIGN KEY ("process_id") REFERENCES "public"."bulk_processes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "directory_users" ADD CONSTRAINT "directory_users_organisation_id_organisations_id_fk" FOREIGN KEY ("organisation_id") REFERENCES "public"."organisations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "locations" ADD CONSTRAINT "locations_parent_id_locations_id_fk" FOREIGN KEY ("parent_id") REFERENCES "public"."locations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "organisations" ADD CONSTRAINT "organisations_location_id_locations_id_fk" FOREIGN KEY ("location_id") REFERENCES "public"."locations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "bulk_processes_idempotency_idx" ON "bulk_processes" USING btree ("created_by","idempotency_key");--> statement-breakpoint
CREATE INDEX "bulk_results_ok_idx" ON "bulk_results" USING btree ("process_id","ok","line");--> statement-breakpoint
CREATE UNIQUE INDEX "directory_users_phone_idx" ON "directory_users" USING btree ("phone");--> statement-breakpoint
CREATE UNIQUE INDEX "directory_users_email_idx" ON "directory_users" USING btree ("email");--> statement-breakpoint
CREATE UNIQUE INDEX "directory_users_external_id_idx" ON "directory_users" USING btree ("external_id");--> statement-breakpoint
CREATE INDEX "directory_users_name_idx" ON "directory_users" USING btree ("name","id");--> statement-breakpoint
CREATE INDEX "directory_users_organisation_idx" ON "directory_users" USING btree ("organisation_id");--> statement-breakpoint
CREATE UNIQUE INDEX "locations_code_idx" ON "locations" USING btree ("code");--> statement-breakpoint
CREATE INDEX "locations_type_code_idx" ON "locations" USING btree ("type","code");--> statement-breakpoint
CREATE INDEX "locations_parent_code_idx" ON "locations" USING btree ("parent_id","code");--> statement-breakpoint
CREATE UNIQUE INDEX "organisations_external_id_idx" ON "organisations" USING btree ("external_id");--> statement-breakpoint
CREATE INDEX "organisations_name_idx" ON "organisations" USING btree ("name","id");--> statement-breakpoint
CREATE INDEX "organisations_location_idx" ON "organisations" USING btree ("location_id");