// The RPC schema files (src/rpc/schema/*.json) as embedded at build time by
// embed_schema.cmake. Read-only data; any thread.
#pragma once

namespace vdpu::rpc::schema {

struct EmbeddedFile {
  const char* name;  // file name, e.g. "bdev_malloc.json"; nullptr ends the table
  const char* text;  // file contents
};

// Generated table, terminated by {nullptr, nullptr}.
extern const EmbeddedFile kEmbeddedFiles[];

}  // namespace vdpu::rpc::schema
