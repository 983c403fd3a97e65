#include "rpc/framing.h"

namespace vdpu::rpc {

const char* splitter_error(JsonSplitter::Err e) {
  switch (e) {
    case JsonSplitter::Err::kNone: return "none";
    case JsonSplitter::Err::kSyntax: return "Parse error";
    case JsonSplitter::Err::kTooLarge: return "Request too large";
    case JsonSplitter::Err::kTooDeep: return "JSON nested too deeply";
  }
  return "?";
}

JsonSplitter::Err JsonSplitter::feed(std::string_view data,
                                     const std::function<void(std::string_view)>& on_message) {
  if (err_ != Err::kNone) return err_;
  size_t i = 0;
  while (i < data.size()) {
    if (!in_value_) {
      // Between values: skip whitespace without buffering it.
      char c = data[i];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i;
        continue;
      }
      if (c != '{' && c != '[') return err_ = Err::kSyntax;
      in_value_ = true;
      depth_ = 0;
      in_str_ = esc_ = false;
      buf_.clear();
      scan_ = 0;
    }
    // Copy at most what the limit allows, then scan it.
    size_t room = max_message_ + 1 - buf_.size();
    size_t take = std::min(room, data.size() - i);
    buf_.append(data.substr(i, take));
    i += take;
    bool done = false;
    for (; scan_ < buf_.size(); ++scan_) {
      char c = buf_[scan_];
      if (in_str_) {
        if (esc_) esc_ = false;
        else if (c == '\\') esc_ = true;
        else if (c == '"') in_str_ = false;
        continue;
      }
      if (c == '"') {
        in_str_ = true;
      } else if (c == '{' || c == '[') {
        if (++depth_ > max_depth_) return err_ = Err::kTooDeep;
      } else if (c == '}' || c == ']') {
        if (--depth_ == 0) {
          done = true;
          break;
        }
      }
    }
    if (done) {
      size_t len = scan_ + 1;
      if (len > max_message_) return err_ = Err::kTooLarge;
      on_message(std::string_view(buf_).substr(0, len));
      // Bytes copied beyond the value go back to the input.
      size_t extra = buf_.size() - len;
      i -= extra;
      buf_.clear();
      scan_ = 0;
      in_value_ = false;
    } else if (buf_.size() > max_message_) {
      return err_ = Err::kTooLarge;
    }
  }
  return Err::kNone;
}

}  // namespace vdpu::rpc
