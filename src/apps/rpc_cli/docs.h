// docs/rpc.md from the schema: `vdpu-rpc --dump-docs` writes it,
// `vdpu-rpc --check-docs FILE` (a ctest) checks that it lists every method.
#pragma once

#include <string>
#include <vector>

#include "rpc/schema.h"

namespace vdpu::rpc::cli {

std::string render_docs(const std::vector<schema::Method>& methods);
// Methods without a "### <name>" heading in the document.
std::vector<std::string> missing_in_docs(const std::string& doc,
                                         const std::vector<schema::Method>& methods);

}  // namespace vdpu::rpc::cli
