CREATE TABLE "file_load_progress" (
	"file_id" uuid PRIMARY KEY NOT NULL,
	"processed" bigint NOT NULL,
	"succeeded" bigint NOT NULL,
	"bytes" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "file_preloads" (
	"file_id" uuid PRIMARY KEY NOT NULL,
	"table_name" text NOT NULL,
	"size" bigint NOT NULL,
	"sha256" text NOT NULL,
	"result" jsonb NOT NULL,
	"valid_csv" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
