// httpd [PORT]: a tiny HTTP/1.0 server (default port 80), one connection at a time. GET
// /PATH serves the file /PATH from the file system (VFS, the MFS disk); GET / is
// /index.html, or a built-in page without one; GET /pattern/N is N bytes (at most 64 MiB)
// where byte i is (i * 7 + i / 251) mod 256, for checking transfers byte for byte.
// Missing files and directories: 404; paths with "..": 403; other methods: 501.
#include "fs.hpp"
#include "socket.hpp"

using user::print;

namespace {

constexpr const char kPage[] =
    "<!doctype html>\n<html><head><title>ukvm</title></head>\n"
    "<body><h1>Hello from a ukvm guest</h1>\n"
    "<p>Served by httpd over lwIP in the guest's INET server.</p></body></html>\n";

uint8_t pattern(uint64_t i) {
    return static_cast<uint8_t>(i * 7 + i / 251);
}

void respond(int fd, const char* status, const char* type, uint64_t length) {
    char head[160];
    size_t n = user::format(head, sizeof head,
                            "HTTP/1.0 %s\r\nServer: ukvm-httpd\r\nContent-Type: %s\r\n"
                            "Content-Length: %lu\r\nConnection: close\r\n\r\n",
                            status, type, length);
    net::send_all(fd, head, n);
}

// Reads the request head (up to the blank line or 1 KiB).
size_t read_request(int fd, char* buf, size_t size) {
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = recv(fd, buf + n, size - 1 - n, 0);
        if (r <= 0) break;
        n += static_cast<size_t>(r);
        buf[n] = '\0';
        for (size_t i = 0; i + 3 < n; ++i)
            if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
                return n;
    }
    buf[n] = '\0';
    return n;
}

const char* content_type(const char* path) {
    const char* dot = nullptr;
    for (const char* p = path; *p; ++p)
        if (*p == '.') dot = p;
    if (dot && (strcmp(dot, ".html") == 0 || strcmp(dot, ".htm") == 0)) return "text/html";
    if (dot && strcmp(dot, ".txt") == 0) return "text/plain";
    return "application/octet-stream";
}

// Sends the regular file at path with its header: false when there is none.
bool send_file(int fd, const char* path) {
    proto::FileStat st{};
    if (sys::stat(path, &st) < 0 || sys::is_dir(st.mode)) return false;
    int32_t f = sys::open(path, proto::kORdOnly);
    if (f < 0) return false;
    respond(fd, "200 OK", content_type(path), st.size);
    static uint8_t buf[32768];
    for (;;) {
        int32_t n = sys::read(f, buf, sizeof buf);
        if (n <= 0 || net::send_all(fd, buf, static_cast<size_t>(n)) < 0) break;
    }
    sys::close(f);
    return true;
}

void serve(int fd) {
    static char req[1024];
    if (read_request(fd, req, sizeof req) == 0) return;
    if (strncmp(req, "GET ", 4) != 0) {
        respond(fd, "501 Not Implemented", "text/plain", 0);
        return;
    }
    char path[64] = {};
    for (size_t i = 0; i < sizeof path - 1 && req[4 + i] && req[4 + i] != ' '; ++i)
        path[i] = req[4 + i];
    print("httpd: GET %s\n", path);
    if (strcmp(path, "/") == 0 && !send_file(fd, "/index.html")) {
        respond(fd, "200 OK", "text/html", sizeof kPage - 1);
        net::send_all(fd, kPage, sizeof kPage - 1);
        return;
    }
    int64_t n;
    if (strncmp(path, "/pattern/", 9) == 0 && sys::parse_int(path + 9, &n) && n >= 0 &&
        n <= 64 * 1024 * 1024) {
        respond(fd, "200 OK", "application/octet-stream", static_cast<uint64_t>(n));
        static uint8_t buf[16384];
        for (uint64_t done = 0; done < static_cast<uint64_t>(n);) {
            uint64_t k = static_cast<uint64_t>(n) - done < sizeof buf
                             ? static_cast<uint64_t>(n) - done
                             : sizeof buf;
            for (uint64_t i = 0; i < k; ++i) buf[i] = pattern(done + i);
            if (net::send_all(fd, buf, k) < 0) return;
            done += k;
        }
        return;
    }
    if (strcmp(path, "/") == 0) return;  // (index.html was sent)
    for (const char* p = path; *p; ++p)
        if (p[0] == '.' && p[1] == '.') {
            const char kForbidden[] = "forbidden\n";
            respond(fd, "403 Forbidden", "text/plain", sizeof kForbidden - 1);
            net::send_all(fd, kForbidden, sizeof kForbidden - 1);
            return;
        }
    if (send_file(fd, path)) return;
    const char kMissing[] = "not found\n";
    respond(fd, "404 Not Found", "text/plain", sizeof kMissing - 1);
    net::send_all(fd, kMissing, sizeof kMissing - 1);
}

}  // namespace

int main(const char* args) {
    int64_t port = 80;
    if (*args && (!sys::parse_int(args, &port) || port < 1 || port > 65535)) {
        print("usage: httpd [PORT]\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || listen(fd, 8) < 0) {
        print("httpd: port %ld: %s\n", port, strerror(errno));
        return 1;
    }
    print("httpd: listening on port %ld\n", port);
    for (;;) {
        int c = accept(fd, nullptr, nullptr);
        if (c < 0) continue;
        serve(c);
        closesocket(c);
    }
}
