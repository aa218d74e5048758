#include "test_buffers.h"

#include <cstring>

#if GT_TEST_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace gt {
namespace testing_comms {
namespace {

class HostBuffer : public TestBuffer {
 public:
  HostBuffer(DType dtype, size_t numel) : dtype_(dtype), numel_(numel), bytes_(numel * DTypeSize(dtype)) {}
  TensorView view() override { return {bytes_.data(), numel_, dtype_, MemoryKind::kCpu, -1}; }
  void Upload(const std::vector<uint8_t>& host) override { bytes_ = host; }
  std::vector<uint8_t> Download() override { return bytes_; }

 private:
  DType dtype_;
  size_t numel_;
  std::vector<uint8_t> bytes_;
};

#if GT_TEST_HAVE_CUDA
class CudaBuffer : public TestBuffer {
 public:
  CudaBuffer(DType dtype, size_t numel, int device) : dtype_(dtype), numel_(numel), device_(device) {
    cudaSetDevice(device_);
    cudaMalloc(&ptr_, numel * DTypeSize(dtype) + 1);
  }
  ~CudaBuffer() override { cudaFree(ptr_); }
  TensorView view() override { return {ptr_, numel_, dtype_, MemoryKind::kCuda, device_}; }
  void Upload(const std::vector<uint8_t>& host) override {
    cudaSetDevice(device_);
    cudaMemcpy(ptr_, host.data(), host.size(), cudaMemcpyHostToDevice);
  }
  std::vector<uint8_t> Download() override {
    std::vector<uint8_t> host(numel_ * DTypeSize(dtype_));
    cudaSetDevice(device_);
    cudaDeviceSynchronize();
    cudaMemcpy(host.data(), ptr_, host.size(), cudaMemcpyDeviceToHost);
    return host;
  }

 private:
  DType dtype_;
  size_t numel_;
  int device_;
  void* ptr_ = nullptr;
};
#endif

}  // namespace

int CudaDeviceCount() {
#if GT_TEST_HAVE_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
#else
  return 0;
#endif
}

std::unique_ptr<TestBuffer> MakeTestBuffer(const std::string& backend, DType dtype, size_t numel, int device) {
#if GT_TEST_HAVE_CUDA
  if (backend == "nccl") return std::make_unique<CudaBuffer>(dtype, numel, device);
#endif
  return std::make_unique<HostBuffer>(dtype, numel);
}

}  // namespace testing_comms
}  // namespace gt
