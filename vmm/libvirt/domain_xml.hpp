// libvirt domain XML <-> the guest description ukvm boots (GuestConfig). Only what ukvm
// can honour is accepted; anything else is rejected naming the element, so a definition
// never silently loses a device. The mapping is documented in docs/management.md.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/config.hpp"
#include "vmm/libvirt/xdr.hpp"

namespace ukvm::libvirt {

// virErrorNumber values this front end reports (include/libvirt/virterror.h).
namespace err {
inline constexpr int kInternal = 1;
inline constexpr int kNoSupport = 3;
inline constexpr int kInvalidArg = 8;
inline constexpr int kOperationFailed = 9;
inline constexpr int kXmlError = 27;
inline constexpr int kDomainExists = 28;
inline constexpr int kOperationDenied = 29;
inline constexpr int kRpc = 39;
inline constexpr int kNoDomain = 42;
inline constexpr int kOperationInvalid = 55;
inline constexpr int kConfigUnsupported = 67;
}  // namespace err

// virErrorDomain values.
namespace from {
inline constexpr int kRpc = 7;
inline constexpr int kDom = 6;
inline constexpr int kDomain = 20;
}  // namespace from

// A definition that is malformed (kXmlError) or asks for something ukvm cannot do
// (kConfigUnsupported); the message names the element.
class DomainXmlError : public std::runtime_error {
public:
    DomainXmlError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const { return code_; }

private:
    int code_;
};

// The namespace of ukvm's own elements under <metadata>.
inline constexpr std::string_view kUkvmXmlns = "https://ukvm.dev/xmlns/1";
inline constexpr std::string_view kOsType = "hvm";
inline constexpr std::string_view kDomainType = "ukvm";

struct DomainDefinition {
    // name, memory_mib, vcpus, kernel, cmdline, modules, disks; console and source are left at
    // their defaults (the daemon decides where the console goes).
    GuestConfig config;
    Uuid uuid{};
    // <on_poweroff>, <on_reboot>, <on_crash>: what ukvmd does when the guest powers off by
    // itself, reboots, or crashes (libvirt's defaults: destroy, restart, destroy).
    enum class Lifecycle { Destroy, Restart };
    Lifecycle on_poweroff = Lifecycle::Destroy;
    Lifecycle on_reboot = Lifecycle::Restart;
    Lifecycle on_crash = Lifecycle::Destroy;
    std::string title;
    std::string description;
    // Other applications' <metadata> children, kept verbatim as libvirt does.
    std::vector<std::string> foreign_metadata;
};

// Parses and validates a domain definition; a missing <uuid> gets a random one.
DomainDefinition parse_domain_xml(std::string_view xml);

// The XML for a definition; id is the running domain's id, or -1 (no id attribute).
std::string format_domain_xml(const DomainDefinition& def, int id = -1);

std::string format_uuid(const Uuid& uuid);
// 32 hex digits, optionally with dashes between groups (8-4-4-4-12).
std::optional<Uuid> parse_uuid(std::string_view text);
Uuid random_uuid();

// Guest names double as file names in the state directory: the config rules (1-64 of
// A-Z a-z 0-9 _ . -) and not starting with a dot. Returns why a name is bad, or nothing.
std::optional<std::string> invalid_name_reason(std::string_view name);

}  // namespace ukvm::libvirt
