// Test helper: a buffer in the memory a backend works on (host for gloo/mpi, CUDA device for nccl),
// filled from and read back into host bytes, so one parameterised test body serves every backend.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comms/tensor.h"

namespace gt {
namespace testing_comms {

class TestBuffer {
 public:
  virtual ~TestBuffer() = default;
  virtual TensorView view() = 0;
  virtual void Upload(const std::vector<uint8_t>& host) = 0;
  virtual std::vector<uint8_t> Download() = 0;
};

// `device` is the CUDA ordinal for nccl (ignored otherwise).
// Visible CUDA devices (0 without CUDA support or without a GPU).
int CudaDeviceCount();

std::unique_ptr<TestBuffer> MakeTestBuffer(const std::string& backend, DType dtype, size_t numel, int device);

}  // namespace testing_comms
}  // namespace gt
