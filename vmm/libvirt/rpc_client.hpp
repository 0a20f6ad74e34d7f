// A minimal libvirt RPC client for ukvm's own commands (`ukvm ps`, `start`, `stop`): the
// same protocol virsh speaks, over the same socket, so ukvmd has one front door.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "vmm/kvm.hpp"
#include "vmm/libvirt/rpc_packet.hpp"

namespace ukvm::libvirt {

// The daemon answered with an error (code: virErrorNumber), or the connection failed
// (code 0, and the message says how).
class RpcCallError : public std::runtime_error {
public:
    RpcCallError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const { return code_; }

private:
    int code_;
};

class RpcClient {
public:
    // Connects and opens "ukvm:///system". Throws RpcCallError.
    explicit RpcClient(const std::filesystem::path& socket);
    ~RpcClient();
    RpcClient(const RpcClient&) = delete;
    RpcClient& operator=(const RpcClient&) = delete;

    // One call: returns the reply payload, or throws RpcCallError.
    std::vector<std::uint8_t> call(std::uint32_t proc, std::span<const std::uint8_t> args = {});

private:
    Fd fd_;
    std::uint32_t serial_ = 0;
    PacketAssembler in_;
};

}  // namespace ukvm::libvirt
