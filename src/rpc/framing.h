// SPDK JSON-RPC framing: a byte stream of concatenated JSON values (objects
// or arrays), no delimiter required, optional whitespace between them.
// JsonSplitter finds the end of each top-level value incrementally, so a
// request split over many reads, or several requests in one read, are both
// handled, and a value larger than the limit is refused without buffering it.
//
// Threads: one splitter per connection, used by one thread. Never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace vdpu::rpc {

class JsonSplitter {
 public:
  enum class Err {
    kNone,
    kSyntax,    // the stream does not start a JSON object/array where one must start
    kTooLarge,  // a value exceeds max_message bytes
    kTooDeep,   // nesting deeper than max_depth
  };

  explicit JsonSplitter(size_t max_message = 4u << 20, uint32_t max_depth = 128)
      : max_message_(max_message), max_depth_(max_depth) {}

  // Appends data and calls on_message with the text of each complete
  // top-level value (valid only during the call). After an error the
  // splitter stays failed (the connection is to be closed).
  Err feed(std::string_view data, const std::function<void(std::string_view)>& on_message);

  // Bytes of an incomplete value held.
  size_t buffered() const { return buf_.size(); }
  // True while in the middle of a value.
  bool partial() const { return in_value_; }
  Err error() const { return err_; }

 private:
  size_t max_message_;
  uint32_t max_depth_;
  std::string buf_;  // starts at the current value (or is empty between values)
  size_t scan_ = 0;  // next byte of buf_ to scan
  bool in_value_ = false;
  bool in_str_ = false;
  bool esc_ = false;
  uint32_t depth_ = 0;
  Err err_ = Err::kNone;
};

const char* splitter_error(JsonSplitter::Err e);

}  // namespace vdpu::rpc
