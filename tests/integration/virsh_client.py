#!/usr/bin/python3
"""Drives ukvmd through Debian's python3-libvirt, as a management application would.

Usage: virsh_client.py SOCKET DOMAIN_XML_FILE
Defines the domain, finds it every way, starts it, reads its console until the guest's
kernel has booted, destroys and undefines it. Prints one "ok: ..." line per step and
exits non-zero (with the libvirt error) at the first step that fails.
"""
import sys
import time

import libvirt


def main():
    socket, xml_file = sys.argv[1], sys.argv[2]
    with open(xml_file) as f:
        xml = f.read()
    libvirt.registerErrorHandler(lambda ctx, err: None, None)  # errors are raised anyway
    conn = libvirt.open("ukvm+unix:///system?socket=" + socket)
    print("ok: open", conn.getType(), conn.getHostname())

    dom = conn.defineXML(xml)
    print("ok: define", dom.name(), dom.UUIDString())
    names = sorted(d.name() for d in conn.listAllDomains())
    print("ok: list", ",".join(names))
    assert dom.name() in names
    assert conn.lookupByName(dom.name()).UUIDString() == dom.UUIDString()
    assert conn.lookupByUUIDString(dom.UUIDString()).name() == dom.name()
    assert dom.isActive() == 0 and dom.isPersistent() == 1
    print("ok: lookup")

    try:
        conn.lookupByName("no-such-domain")
        raise AssertionError("lookup of a missing domain succeeded")
    except libvirt.libvirtError as e:
        assert e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN, e.get_error_code()
    print("ok: missing domain is VIR_ERR_NO_DOMAIN")

    dom.create()
    assert dom.isActive() == 1
    state, reason = dom.state()
    assert state == libvirt.VIR_DOMAIN_RUNNING, (state, reason)
    assert conn.lookupByID(dom.ID()).name() == dom.name()
    info = dom.info()
    print("ok: start id=%d state=%d maxmem=%d vcpus=%d" % (dom.ID(), info[0], info[1], info[3]))

    stream = conn.newStream(0)
    dom.openConsole(None, stream, 0)
    data = b""
    deadline = time.time() + 10
    while b"boot modules loaded" not in data and time.time() < deadline:
        chunk = stream.recv(4096)
        if not chunk:
            break
        if isinstance(chunk, bytes):
            data += chunk
    stream.finish()
    assert b"boot modules loaded" in data, data
    print("ok: console", len(data), "bytes")

    dom.destroy()
    state, reason = dom.state()
    assert (state, reason) == (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED), (
        state, reason)
    print("ok: destroy")
    dom.undefine()
    assert dom.name() not in [d.name() for d in conn.listAllDomains()]
    print("ok: undefine")
    conn.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except libvirt.libvirtError as e:
        print("libvirt error %d: %s" % (e.get_error_code(), e), file=sys.stderr)
        sys.exit(1)
