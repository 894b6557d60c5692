// Small sinks shared by every pipeline.
#include "common/io/sink.h"

#include "common/base/error.h"

namespace tidemark::io {

void MemorySink::write(ByteView data) {
  if (data_.size() + data.size() > limit_)
    throw error(ErrorCode::Corrupt, "object is larger than the {} bytes expected of it", limit_);
  data_.insert(data_.end(), data.begin(), data.end());
}

}  // namespace tidemark::io
