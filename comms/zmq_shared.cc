#include "comms/zmq_shared.h"

#include <vector>

#include <zmq_addon.hpp>

#include "common/log.h"

namespace gt::comms_internal {
namespace {
constexpr const char* kLog = "comms.zap";
}  // namespace

bool ValidZ85Key(const std::string& k) {
  if (k.size() != 40) return false;
  uint8_t buf[32];
  return zmq_z85_decode(buf, k.c_str()) != nullptr;
}

std::string Z85(const uint8_t* key32) {
  char out[41];
  if (zmq_z85_encode(out, key32, 32) == nullptr) return "";
  return std::string(out, 40);
}

SharedZmq& SharedZmq::Get() {
  static SharedZmq* instance = new SharedZmq();
  return *instance;
}

SharedZmq::SharedZmq() : ctx_(2) {
  zmq::socket_t rep(ctx_, zmq::socket_type::rep);
  rep.set(zmq::sockopt::linger, 0);
  rep.bind("inproc://zeromq.zap.01");
  zap_ = std::thread([this, r = std::move(rep)]() mutable { Run(std::move(r)); });
  zap_.detach();
}

void SharedZmq::Run(zmq::socket_t rep) {
  while (true) {
    std::vector<zmq::message_t> req;
    try {
      if (!zmq::recv_multipart(rep, std::back_inserter(req))) continue;
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      GT_ERROR(kLog, "ZAP handler receive failed: " << e.what());
      continue;
    }
    std::string version = req.size() > 0 ? req[0].to_string() : "";
    std::string request_id = req.size() > 1 ? req[1].to_string() : "";
    std::string domain = req.size() > 2 ? req[2].to_string() : "";
    std::string address = req.size() > 3 ? req[3].to_string() : "?";
    std::string mechanism = req.size() > 5 ? req[5].to_string() : "";
    std::string key = (req.size() >= 7 && req[6].size() == 32) ? Z85(static_cast<const uint8_t*>(req[6].data())) : "";
    std::string status = "400", text, user;
    if (version != "1.0" || req.size() < 6) {
      text = "malformed ZAP request";
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = domains_.find(domain);
      if (it == domains_.end()) {
        text = "unknown ZAP domain";
      } else if (it->second(mechanism, key, address, &text)) {
        status = "200";
        user = text;
        text = "OK";
      }
    }
    try {
      std::vector<zmq::message_t> out;
      out.emplace_back("1.0", 3);
      out.emplace_back(request_id.data(), request_id.size());
      out.emplace_back(status.data(), status.size());
      out.emplace_back(text.data(), text.size());
      out.emplace_back(user.data(), user.size());
      out.emplace_back();
      zmq::send_multipart(rep, out);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      GT_ERROR(kLog, "ZAP handler reply failed: " << e.what());
    }
  }
}


}  // namespace gt::comms_internal
