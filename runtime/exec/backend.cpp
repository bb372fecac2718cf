#include "runtime/exec/backend.h"

#include <string>
#include <utility>

#include "support/errors.h"

namespace nas {

DeviceBuffer::DeviceBuffer(Backend& owner, size_t elements, DType dtype)
    : owner_(&owner), elements_(elements), dtype_(dtype) {
  // An empty tensor still gets an address, so that kernels never see null.
  ptr_ = owner.allocate(elements == 0 ? dtype_size(dtype) : elements * dtype_size(dtype));
  mark_written();
}

void DeviceBuffer::mark_written() {
  if (owner_ != nullptr) generation_ = owner_->next_generation();
}

DeviceBuffer::~DeviceBuffer() {
  reset();
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)),
      ptr_(std::exchange(other.ptr_, nullptr)),
      elements_(std::exchange(other.elements_, 0)),
      dtype_(other.dtype_),
      generation_(other.generation_) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    owner_ = std::exchange(other.owner_, nullptr);
    ptr_ = std::exchange(other.ptr_, nullptr);
    elements_ = std::exchange(other.elements_, 0);
    dtype_ = other.dtype_;
    generation_ = other.generation_;
  }
  return *this;
}

void DeviceBuffer::reset() {
  if (owner_ != nullptr && ptr_ != nullptr) owner_->release(ptr_);
  owner_ = nullptr;
  ptr_ = nullptr;
  elements_ = 0;
}

void check_buffer_range(const DeviceBuffer& b, size_t bytes, size_t offset, const char* what) {
  NAS_CHECK(offset <= b.bytes() && bytes <= b.bytes() - offset,
            std::string(what) + ": " + std::to_string(bytes) + " bytes at " +
                std::to_string(offset) + " of a buffer of " + std::to_string(b.bytes()));
}

void check_same_fp32(const DeviceBuffer& a, const DeviceBuffer& b, const char* what) {
  NAS_CHECK(a.size() == b.size() && a.dtype() == DType::F32 && b.dtype() == DType::F32,
            std::string(what) + ": fp32 buffers of " + std::to_string(a.size()) + " and " +
                std::to_string(b.size()) + " elements");
}

std::vector<float> download_floats(Backend& backend, const DeviceBuffer& src) {
  NAS_CHECK(src.dtype() == DType::F32,
            std::string("download_floats of a ") + dtype_name(src.dtype()) + " buffer");
  std::vector<float> host(src.size());
  if (!host.empty()) backend.download(host.data(), src, src.bytes());
  return host;
}

void upload_floats(Backend& backend, DeviceBuffer& dst, const std::vector<float>& host) {
  NAS_CHECK(dst.dtype() == DType::F32 && host.size() == dst.size(),
            "upload_floats: " + std::to_string(host.size()) + " floats into a buffer of " +
                std::to_string(dst.size()) + " " + dtype_name(dst.dtype()));
  if (host.empty()) return;
  backend.upload(dst, host.data(), dst.bytes());
  backend.synchronize();  // `host` may go away when this returns
}

}  // namespace nas
