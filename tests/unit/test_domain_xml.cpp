// Domain XML <-> GuestConfig: the mapping both ways, and every rejection naming its element.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "vmm/libvirt/domain_xml.hpp"

namespace ukvm::libvirt {
namespace {

using ::testing::HasSubstr;

constexpr const char* kFull = R"(<domain type='ukvm'>
  <name>hello</name>
  <uuid>6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b</uuid>
  <title>A test</title>
  <metadata>
    <ukvm:modules xmlns:ukvm="https://ukvm.dev/xmlns/1">
      <ukvm:module path="/guests/pm" args="pm --trace"/>
      <ukvm:module path="/guests/vfs"/>
    </ukvm:modules>
    <app:info xmlns:app="https://example.org/app">kept</app:info>
  </metadata>
  <memory unit='MiB'>128</memory>
  <currentMemory unit='KiB'>131072</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>/guests/kernel.elf</kernel>
    <cmdline>greeting=hello exit=0</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>)";

// Parses xml expecting a DomainXmlError; returns "CODE: message".
std::string error_of(const std::string& xml) {
    try {
        parse_domain_xml(xml);
    } catch (const DomainXmlError& e) {
        return std::to_string(e.code()) + ": " + e.what();
    }
    ADD_FAILURE() << "accepted:\n" << xml;
    return {};
}

// A minimal valid domain with `extra` inserted before </domain>.
std::string minimal(const std::string& extra = "", const std::string& os_extra = "") {
    return "<domain type='ukvm'><name>g</name><memory>65536</memory><os><type>hvm</type>"
           "<kernel>/k.elf</kernel>" +
           os_extra + "</os>" + extra + "</domain>";
}

TEST(DomainXml, ParsesEverythingItMaps) {
    const DomainDefinition d = parse_domain_xml(kFull);
    EXPECT_EQ(d.config.name, "hello");
    EXPECT_EQ(format_uuid(d.uuid), "6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b");
    EXPECT_EQ(d.title, "A test");
    EXPECT_EQ(d.config.memory_mib, 128u);
    EXPECT_EQ(d.config.vcpus, 1u);
    EXPECT_EQ(d.config.kernel, "/guests/kernel.elf");
    EXPECT_EQ(d.config.cmdline, "greeting=hello exit=0");
    ASSERT_EQ(d.config.modules.size(), 2u);
    EXPECT_EQ(d.config.modules[0].path, "/guests/pm");
    EXPECT_EQ(d.config.modules[0].args, "pm --trace");
    EXPECT_EQ(d.config.modules[1].path, "/guests/vfs");
    EXPECT_EQ(d.config.modules[1].args, "");
    ASSERT_EQ(d.foreign_metadata.size(), 1u);
    EXPECT_THAT(d.foreign_metadata[0], HasSubstr("https://example.org/app"));
}

TEST(DomainXml, FormatsAndParsesBackTheSameDefinition) {
    const DomainDefinition d = parse_domain_xml(kFull);
    const std::string xml = format_domain_xml(d, 7);
    EXPECT_THAT(xml, HasSubstr("<domain type=\"ukvm\" id=\"7\">"));
    EXPECT_THAT(xml, HasSubstr("<memory unit=\"KiB\">131072</memory>"));
    EXPECT_THAT(xml, HasSubstr("<type arch=\"x86_64\">hvm</type>"));
    EXPECT_THAT(xml, HasSubstr("<ukvm:module path=\"/guests/pm\" args=\"pm --trace\" />"));
    EXPECT_THAT(xml, HasSubstr("<console type=\"pty\">"));
    const DomainDefinition back = parse_domain_xml(xml);
    EXPECT_EQ(back.config.name, d.config.name);
    EXPECT_EQ(back.uuid, d.uuid);
    EXPECT_EQ(back.config.memory_mib, d.config.memory_mib);
    EXPECT_EQ(back.config.kernel, d.config.kernel);
    EXPECT_EQ(back.config.cmdline, d.config.cmdline);
    ASSERT_EQ(back.config.modules.size(), 2u);
    EXPECT_EQ(back.config.modules[0].args, "pm --trace");
    EXPECT_EQ(back.foreign_metadata, d.foreign_metadata);
    EXPECT_EQ(format_domain_xml(back, 7), xml);
    EXPECT_THAT(format_domain_xml(d), Not(HasSubstr("id=")));
}

TEST(DomainXml, EscapesTextAndAttributes) {
    DomainDefinition d = parse_domain_xml(minimal());
    d.config.cmdline = "a<b & \"c\"";
    d.config.modules.push_back({"/m", "x='1' & <y>"});
    const DomainDefinition back = parse_domain_xml(format_domain_xml(d));
    EXPECT_EQ(back.config.cmdline, "a<b & \"c\"");
    EXPECT_EQ(back.config.modules.at(0).args, "x='1' & <y>");
}

TEST(DomainXml, MemoryUnits) {
    auto mib = [](const std::string& memory) {
        return parse_domain_xml("<domain type='ukvm'><name>g</name>" + memory +
                                "<os><type>hvm</type><kernel>/k</kernel></os></domain>")
            .config.memory_mib;
    };
    EXPECT_EQ(mib("<memory>65536</memory>"), 64u);  // KiB by default
    EXPECT_EQ(mib("<memory unit='KiB'>65536</memory>"), 64u);
    EXPECT_EQ(mib("<memory unit='M'>32</memory>"), 32u);
    EXPECT_EQ(mib("<memory unit='GiB'>1</memory>"), 1024u);
    EXPECT_EQ(mib("<memory unit='b'>4194305</memory>"), 5u);  // rounded up to whole MiB
    EXPECT_EQ(mib("<memory unit='MB'>100</memory>"), 96u);    // 100e6 bytes = 95.4 MiB
}

TEST(DomainXml, GeneratesAVersion4UuidWhenAbsent) {
    const DomainDefinition a = parse_domain_xml(minimal());
    const DomainDefinition b = parse_domain_xml(minimal());
    EXPECT_NE(a.uuid, b.uuid);
    EXPECT_EQ(a.uuid[6] >> 4, 4);
    EXPECT_EQ(a.uuid[8] & 0xc0, 0x80);
}

TEST(DomainXml, InitrdBecomesAModule) {
    const DomainDefinition d = parse_domain_xml(minimal("", "<initrd>/boot/init</initrd>"));
    ASSERT_EQ(d.config.modules.size(), 1u);
    EXPECT_EQ(d.config.modules[0].path, "/boot/init");
}

TEST(DomainXml, UuidParsing) {
    EXPECT_TRUE(parse_uuid("6f1a2b3c4d5e4f608a7b9c0d1e2f3a4b"));
    EXPECT_TRUE(parse_uuid("6F1A2B3C-4D5E-4F60-8A7B-9C0D1E2F3A4B"));
    EXPECT_FALSE(parse_uuid("6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4"));
    EXPECT_FALSE(parse_uuid("6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4g"));
    EXPECT_FALSE(parse_uuid("6f1a2b3c+4d5e-4f60-8a7b-9c0d1e2f3a4b"));
    EXPECT_EQ(error_of("<domain type='ukvm'><name>g</name><uuid>nope</uuid></domain>"),
              "27: <uuid>: 'nope' is not a UUID");
}

TEST(DomainXml, MalformedXmlIsAnXmlError) {
    EXPECT_THAT(error_of("<domain type='ukvm'><name>g</name>"), HasSubstr("27: malformed"));
    EXPECT_THAT(error_of(""), HasSubstr("27: "));
    EXPECT_THAT(error_of("<network/>"), HasSubstr("27: expected a <domain> root element"));
    EXPECT_THAT(error_of("<domain><name>g</name></domain>"), HasSubstr("27: <domain>: the type"));
}

TEST(DomainXml, MissingRequiredElements) {
    EXPECT_EQ(error_of("<domain type='ukvm'><memory>65536</memory></domain>"),
              "27: <name>: missing");
    EXPECT_EQ(error_of("<domain type='ukvm'><name>g</name><os/></domain>"),
              "27: <memory>: missing");
    EXPECT_THAT(error_of("<domain type='ukvm'><name>g</name><memory>65536</memory>"
                         "<os><type>hvm</type></os></domain>"),
                HasSubstr("27: <os><kernel>: missing"));
}

TEST(DomainXml, BadValuesNameTheElement) {
    EXPECT_THAT(error_of(minimal("<vcpu>2</vcpu>")),
                HasSubstr("67: <vcpu>: only 1 vCPU is supported"));
    EXPECT_THAT(error_of(minimal("<vcpu>x</vcpu>")), HasSubstr("27: <vcpu>: expected an unsigned"));
    EXPECT_THAT(error_of("<domain type='ukvm'><name>a/b</name></domain>"),
                HasSubstr("27: <name>: contains a character"));
    EXPECT_THAT(error_of("<domain type='ukvm'><name>..</name></domain>"),
                HasSubstr("27: <name>: must not start with '.'"));
    EXPECT_THAT(error_of(minimal("<currentMemory>1024</currentMemory>")),
                HasSubstr("67: <currentMemory>: 1 MiB differs from <memory> (64 MiB)"));
    EXPECT_THAT(error_of(minimal("<on_reboot>preserve</on_reboot>")),
                HasSubstr("67: <on_reboot>: 'preserve' is not supported"));
    EXPECT_THAT(error_of("<domain type='ukvm'><name>g</name><memory unit='parsec'>1</memory>"
                         "</domain>"),
                HasSubstr("27: <memory>: unknown unit 'parsec'"));
    EXPECT_THAT(
        error_of("<domain type='ukvm'><name>g</name><memory unit='MiB'>1</memory></domain>"),
        HasSubstr("67: <memory>: 1 MiB is out of range"));
    EXPECT_THAT(error_of("<domain type='ukvm'><name>g</name>"
                         "<memory unit='TiB'>99999999999</memory></domain>"),
                HasSubstr("27: <memory>: value is too large"));
}

TEST(DomainXml, OsTypeMustBeHvm) {
    EXPECT_THAT(error_of("<domain type='ukvm'><name>g</name><memory>65536</memory><os>"
                         "<type>linux</type><kernel>/k</kernel></os></domain>"),
                HasSubstr("67: <os><type>: 'linux' is not supported; ukvm guests are 'hvm'"));
    EXPECT_THAT(error_of(minimal("", "<boot dev='hd'/>")), HasSubstr("67: <os><boot>"));
    EXPECT_THAT(error_of("<domain type='ukvm'><name>g</name><memory>65536</memory><os>"
                         "<type>hvm</type><kernel>k.elf</kernel></os></domain>"),
                HasSubstr("27: <os><kernel>: 'k.elf' is not an absolute path"));
    EXPECT_THAT(error_of("<domain type='xen'><name>g</name></domain>"),
                HasSubstr("67: <domain type='xen'>"));
}

TEST(DomainXml, DevicesItCannotHonourAreConfigUnsupported) {
    EXPECT_THAT(error_of(minimal("<devices><disk type='network'/></devices>")),
                HasSubstr("67: <devices><disk> 0: type='network' is not supported"));
    EXPECT_THAT(error_of(minimal("<devices><interface type='vhostuser'/></devices>")),
                HasSubstr("67: <devices><interface> 0: type='vhostuser' is not supported"));
    EXPECT_THAT(error_of(minimal("<devices><graphics type='vnc'/></devices>")),
                HasSubstr("67: <devices><graphics>"));
    EXPECT_THAT(error_of(minimal("<devices><console type='file'/></devices>")),
                HasSubstr("67: <devices><console type='file'>"));
    EXPECT_THAT(error_of(minimal("<devices><serial type='pty'><target port='1'/></serial>"
                                 "</devices>")),
                HasSubstr("67: <devices><serial><target port='1'>"));
    EXPECT_THAT(error_of(minimal("<devices><memballoon model='virtio'/></devices>")),
                HasSubstr("67: <devices><memballoon model='virtio'>"));
    EXPECT_THAT(error_of(minimal("<features><acpi/></features>")), HasSubstr("67: <features>"));
}

TEST(DomainXml, UkvmMetadataIsChecked) {
    EXPECT_THAT(error_of(minimal("<metadata><u:modules xmlns:u='https://ukvm.dev/xmlns/1'>"
                                 "<u:module path='rel'/></u:modules></metadata>")),
                HasSubstr("27: <metadata><ukvm:modules><ukvm:module> 0 path: 'rel' is not"));
    EXPECT_THAT(error_of(minimal("<metadata><u:disks xmlns:u='https://ukvm.dev/xmlns/1'/>"
                                 "</metadata>")),
                HasSubstr("67: <metadata>: unknown ukvm element <u:disks>"));
    EXPECT_THAT(error_of(minimal("<metadata><u:modules xmlns:u='https://ukvm.dev/xmlns/1'>"
                                 "<u:module path='/m'/></u:modules></metadata>",
                                 "<initrd>/i</initrd>")),
                HasSubstr("27: <os><initrd>: use either"));
    // Any prefix works; what matters is the namespace.
    const DomainDefinition d =
        parse_domain_xml(minimal("<metadata><x:modules xmlns:x='https://ukvm.dev/xmlns/1'>"
                                 "<x:module path='/m' args='a'/></x:modules></metadata>"));
    ASSERT_EQ(d.config.modules.size(), 1u);
    EXPECT_EQ(d.config.modules[0].args, "a");
}

TEST(DomainXml, LifecycleActionsRoundTrip) {
    using L = DomainDefinition::Lifecycle;
    const DomainDefinition d =
        parse_domain_xml(minimal("<on_poweroff>restart</on_poweroff><on_reboot>destroy</on_reboot>"
                                 "<on_crash>restart</on_crash>"));
    EXPECT_EQ(d.on_poweroff, L::Restart);
    EXPECT_EQ(d.on_reboot, L::Destroy);
    EXPECT_EQ(d.on_crash, L::Restart);
    const std::string xml = format_domain_xml(d);
    EXPECT_THAT(xml, HasSubstr("<on_poweroff>restart</on_poweroff>"));
    EXPECT_THAT(xml, HasSubstr("<on_reboot>destroy</on_reboot>"));
    EXPECT_THAT(xml, HasSubstr("<on_crash>restart</on_crash>"));
    const DomainDefinition again = parse_domain_xml(xml);
    EXPECT_EQ(again.on_poweroff, L::Restart);
    EXPECT_EQ(again.on_reboot, L::Destroy);
    EXPECT_EQ(again.on_crash, L::Restart);
    // libvirt's defaults.
    const DomainDefinition plain = parse_domain_xml(minimal());
    EXPECT_EQ(plain.on_poweroff, L::Destroy);
    EXPECT_EQ(plain.on_reboot, L::Restart);
    EXPECT_EQ(plain.on_crash, L::Destroy);
    EXPECT_THAT(format_domain_xml(plain), HasSubstr("<on_poweroff>destroy</on_poweroff>\n  "
                                                    "<on_reboot>restart</on_reboot>\n  "
                                                    "<on_crash>destroy</on_crash>"));
    // libvirt's other actions are valid XML ukvm cannot honour; anything else is an XML error.
    EXPECT_EQ(error_of(minimal("<on_crash>coredump-restart</on_crash>")),
              "67: <on_crash>: 'coredump-restart' is not supported, only 'destroy' or 'restart'");
    EXPECT_EQ(error_of(minimal("<on_poweroff>rename-restart</on_poweroff>")),
              "67: <on_poweroff>: 'rename-restart' is not supported, only 'destroy' or 'restart'");
    EXPECT_EQ(error_of(minimal("<on_reboot>explode</on_reboot>")),
              "27: <on_reboot>: unknown action 'explode'");
}

TEST(DomainXml, InterfacesMapToNetBackends) {
    const DomainDefinition d = parse_domain_xml(
        minimal("<devices>"
                "<interface type='user'><model type='virtio'/></interface>"
                "<interface type='bridge'><source bridge='br0'/><target dev='tap7'/>"
                "<mac address='52:54:00:AB:cd:01'/></interface>"
                "<interface type='ethernet'><target dev='tap8'/></interface>"
                "<interface type='network'><source network='lan0'/><alias name='n'/></interface>"
                "</devices>"));
    const auto& n = d.config.nets;
    ASSERT_EQ(n.size(), 4u);
    EXPECT_EQ(n[0].backend, NetBackendKind::User);
    EXPECT_EQ(n[0].mac, derived_mac("g", 0));  // no <mac>: derived, as in guest.toml
    EXPECT_EQ(n[1].backend, NetBackendKind::Tap);
    EXPECT_EQ(n[1].bridge, "br0");
    EXPECT_EQ(n[1].ifname, "tap7");
    EXPECT_EQ(n[1].mac, (MacAddress{0x52, 0x54, 0x00, 0xab, 0xcd, 0x01}));
    EXPECT_EQ(n[2].backend, NetBackendKind::Tap);
    EXPECT_EQ(n[2].bridge, "");
    EXPECT_EQ(n[2].ifname, "tap8");
    EXPECT_EQ(n[3].backend, NetBackendKind::Switch);
    EXPECT_EQ(n[3].switch_name, "lan0");
    // dumpxml maps them back, and that XML defines the same NICs.
    const std::string xml = format_domain_xml(d);
    EXPECT_THAT(xml, HasSubstr("<interface type=\"user\">\n      <mac address=\""));
    EXPECT_THAT(xml, HasSubstr("<interface type=\"bridge\">\n      <source bridge=\"br0\" />\n"
                               "      <mac address=\"52:54:00:ab:cd:01\" />\n"
                               "      <target dev=\"tap7\" />\n"
                               "      <model type=\"virtio\" />"));
    EXPECT_THAT(xml, HasSubstr("<interface type=\"ethernet\">"));
    EXPECT_THAT(xml, HasSubstr("<interface type=\"network\">\n      <source network=\"lan0\" />"));
    const DomainDefinition back = parse_domain_xml(xml);
    ASSERT_EQ(back.config.nets.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(back.config.nets[i].backend, n[i].backend) << i;
        EXPECT_EQ(back.config.nets[i].mac, n[i].mac) << i;
        EXPECT_EQ(back.config.nets[i].bridge, n[i].bridge) << i;
        EXPECT_EQ(back.config.nets[i].ifname, n[i].ifname) << i;
        EXPECT_EQ(back.config.nets[i].switch_name, n[i].switch_name) << i;
    }
}

TEST(DomainXml, InterfacesItCannotHonourNameTheElement) {
    auto nic = [](const std::string& inner) {
        return error_of(minimal("<devices>" + inner + "</devices>"));
    };
    EXPECT_EQ(nic("<interface type='direct'><source dev='eth0'/></interface>"),
              "67: <devices><interface> 0: type='direct' is not supported (user, bridge, "
              "ethernet or network)");
    EXPECT_EQ(nic("<interface type='user'><model type='e1000'/></interface>"),
              "67: <devices><interface> 0 <model type='e1000'>: only virtio");
    EXPECT_EQ(nic("<interface type='user'><portForward proto='tcp'/></interface>"),
              "67: <devices><interface> 0 <portForward>: not supported with type='user'");
    EXPECT_EQ(nic("<interface type='bridge'><bandwidth/><source bridge='b'/></interface>"),
              "67: <devices><interface> 0 <bandwidth>: not supported with type='bridge'");
    EXPECT_EQ(nic("<interface type='bridge'/>"),
              "27: <devices><interface> 0: <source bridge> is missing");
    EXPECT_EQ(nic("<interface type='network'><source network='a/b'/></interface>"),
              "27: <devices><interface> 0 <source network>: 'a/b' uses characters other than "
              "A-Z a-z 0-9 _ . -");
    EXPECT_EQ(nic("<interface type='bridge'><source bridge='a-very-long-bridge'/></interface>"),
              "27: <devices><interface> 0 <source bridge>: an interface name has 1 to 15 bytes");
    EXPECT_EQ(nic("<interface type='user'><mac address='01:00:00:00:00:01'/></interface>"),
              "27: <devices><interface> 0 <mac address>: '01:00:00:00:00:01' is a multicast "
              "address");
    EXPECT_EQ(nic("<interface type='user'><mac address='52:54:00'/></interface>"),
              "27: <devices><interface> 0 <mac address>: expected a MAC address like "
              "'52:54:00:12:34:56', got '52:54:00'");
    EXPECT_EQ(nic("<interface type='user'><mac address='52:54:00:00:00:01'/></interface>"
                  "<interface type='user'><mac address='52:54:00:00:00:01'/></interface>"),
              "27: <devices><interface> 1 <mac address>: also interface 0's MAC");
    std::string nine;
    for (int i = 0; i < 9; ++i) nine += "<interface type='user'/>";
    EXPECT_EQ(nic(nine), "67: <devices>: more than 8 disks and interfaces together");
}

TEST(DomainXml, DisksMapToVirtioBlk) {
    const DomainDefinition d = parse_domain_xml(minimal(
        "<devices>"
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        "<source file='/img/root.img'/><target dev='vda' bus='virtio'/><serial>ROOT1</serial>"
        "</disk>"
        "<disk type='block'><source dev='/dev/sdz'/><readonly/><address type='pci'/></disk>"
        "</devices>"));
    ASSERT_EQ(d.config.disks.size(), 2u);
    EXPECT_EQ(d.config.disks[0].path, "/img/root.img");
    EXPECT_FALSE(d.config.disks[0].read_only);
    EXPECT_EQ(d.config.disks[0].serial, "ROOT1");
    EXPECT_EQ(d.config.disks[1].path, "/dev/sdz");
    EXPECT_TRUE(d.config.disks[1].read_only);
    const std::string xml = format_domain_xml(d);
    EXPECT_THAT(xml, HasSubstr("<source file=\"/img/root.img\" />"));
    EXPECT_THAT(xml, HasSubstr("<target dev=\"vda\" bus=\"virtio\" />"));
    EXPECT_THAT(xml, HasSubstr("<disk type=\"block\" device=\"disk\">"));
    EXPECT_THAT(xml, HasSubstr("<target dev=\"vdb\" bus=\"virtio\" />"));
    const DomainDefinition back = parse_domain_xml(xml);
    ASSERT_EQ(back.config.disks.size(), 2u);
    EXPECT_EQ(back.config.disks[0].serial, "ROOT1");
    EXPECT_TRUE(back.config.disks[1].read_only);
    EXPECT_EQ(format_domain_xml(back), xml);
}

TEST(DomainXml, DiskErrorsNameTheDisk) {
    auto disk = [](const std::string& inner, const std::string& attrs = "type='file'") {
        return error_of(minimal("<devices><disk " + attrs + ">" + inner + "</disk></devices>"));
    };
    EXPECT_THAT(disk(""), HasSubstr("27: <devices><disk> 0: <source> is missing"));
    EXPECT_THAT(disk("<source file='rel.img'/>"),
                HasSubstr("27: <devices><disk> 0 <source file>: 'rel.img' is not an absolute"));
    EXPECT_THAT(disk("<source file='/a'/><driver type='qcow2'/>"),
                HasSubstr("67: <devices><disk> 0 <driver type='qcow2'>: only raw images"));
    EXPECT_THAT(disk("<source file='/a'/><target dev='sda' bus='sata'/>"),
                HasSubstr("67: <devices><disk> 0 <target bus='sata'>: only virtio"));
    EXPECT_THAT(disk("<source file='/a'/>", "type='file' device='cdrom'"),
                HasSubstr("67: <devices><disk> 0: device='cdrom' is not supported"));
    EXPECT_THAT(disk("<source file='/a'/><serial>" + std::string(21, 'x') + "</serial>"),
                HasSubstr("27: <devices><disk> 0 <serial>: at most 20 printable ASCII"));
    EXPECT_THAT(disk("<source file='/a'/><iotune/>"),
                HasSubstr("67: <devices><disk> 0 <iotune>: not supported"));
    std::string nine;
    for (int i = 0; i < 9; ++i)
        nine += "<disk type='file'><source file='/d" + std::to_string(i) + "'/></disk>";
    EXPECT_THAT(error_of(minimal("<devices>" + nine + "</devices>")),
                HasSubstr("67: <devices><disk>: more than 8 disks"));
}

TEST(DomainXml, CmdlineLimit) {
    EXPECT_THAT(error_of(minimal("", "<cmdline>" + std::string(4097, 'x') + "</cmdline>")),
                HasSubstr("27: <os><cmdline>: is 4097 bytes long, the limit is 4096"));
}

}  // namespace
}  // namespace ukvm::libvirt
