#include "worker/async_checkpoint.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

namespace gt::worker {

AsyncCheckpointWriter::AsyncCheckpointWriter(int threads) : threads_(std::max(1, threads)), thread_([this] { Loop(); }) {}

AsyncCheckpointWriter::~AsyncCheckpointWriter() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !job_.has_value(); });
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

LayerState* AsyncCheckpointWriter::AcquireBuffer() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !job_.has_value(); });
  return &buffer_;
}

void AsyncCheckpointWriter::Submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = std::move(job);
  }
  cv_.notify_all();
}

std::optional<AsyncCheckpointWriter::Finished> AsyncCheckpointWriter::TakeFinished() {
  std::lock_guard<std::mutex> lock(mu_);
  return PopFinished();
}

std::optional<AsyncCheckpointWriter::Finished> AsyncCheckpointWriter::WaitFinished() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !job_.has_value(); });
  return PopFinished();
}

std::optional<AsyncCheckpointWriter::Finished> AsyncCheckpointWriter::PopFinished() {
  if (finished_.empty()) return std::nullopt;
  Finished f = std::move(finished_.front());
  finished_.pop_front();
  return f;
}

bool AsyncCheckpointWriter::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return job_.has_value();
}

void AsyncCheckpointWriter::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return quit_ || job_.has_value(); });
    if (!job_.has_value()) return;  // quit with nothing in flight
    const Job job = *job_;
    lock.unlock();
    Finished f;
    f.job = job;
    const auto t0 = std::chrono::steady_clock::now();
    std::error_code ec;
    std::filesystem::create_directories(job.dir, ec);
    if (ec) {
      f.status = IoError("cannot create checkpoint directory '" + job.dir + "': " + ec.message());
    } else {
      auto files = WriteLayerFiles(job.dir, buffer_, job.layers, threads_);
      if (files.ok()) {
        f.files = std::move(files).value();
        for (const auto& e : f.files) f.bytes += e.bytes;
      } else {
        f.status = files.status();
      }
    }
    f.write_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    lock.lock();
    finished_.push_back(std::move(f));
    job_.reset();
    cv_.notify_all();
  }
}

}  // namespace gt::worker
