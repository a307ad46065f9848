CREATE TABLE "skill_frameworks" (
	"ce_ctid" text PRIMARY KEY NOT NULL,
	"uri" text NOT NULL,
	"name" text,
	"description" text,
	"source_name" text NOT NULL,
	"raw" jsonb NOT NULL,
	"competency_count" integer NOT NULL,
	"import_job_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"imported_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "skills" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text NOT NULL,
	"reference_id" text NOT NULL,
	"ce_ctid" text,
	"parent_nodes" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"child_nodes" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"framework_ctid" text,
	"framework_name" text,
	"framework_uri" text,
	"source_uri" text NOT NULL,
	"source_name" text NOT NULL,
	"keywords" text[] DEFAULT '{}'::text[] NOT NULL,
	"category" text,
	"raw" jsonb NOT NULL,
	"position" integer DEFAULT 0 NOT NULL,
	"import_job_id" uuid,
	"removed_at" timestamp with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "skills_ctid_idx" ON "skills" USING btree ("ce_ctid");--> statement-breakpoint
CREATE INDEX "skills_created_at_idx" ON "skills" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "skills_framework_idx" ON "skills" USING btree ("framework_ctid");--> statement-breakpoint
CREATE INDEX "skills_source_name_idx" ON "skills" USING btree ("source_name");