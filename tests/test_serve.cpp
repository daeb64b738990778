// [serve] moh-serve end to end over loopback: the app is started as a subprocess with --port 0 (its printed address
// is read back) and spoken to with a minimal HTTP/1.1 client over POSIX sockets (no HTTP library needed here).
// Covers every endpoint, dynamic batching (32 concurrent requests, fewer forward passes), byte equality of a
// generated PNG with moh-generate's, cancel, a full queue (429), bad input (4xx JSON, the server keeps serving),
// bearer auth and SIGTERM. Every wait is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

using moh::test::repo_path;
// The same thread count for moh-serve, moh-generate and moh-classify (the same floats). One: on a busy 2-core machine
// two OpenMP threads ran the demo DiT 20x slower than one.
const int kThreads = 1;

using moh::test::read_file;

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  json js() const { return json::parse(body); }
  std::string header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// One request on a fresh connection ("Connection: close"), reading the reply to EOF. status 0: no reply.
Reply http(int port, const std::string& method, const std::string& path, const std::string& body = "",
           const std::vector<std::string>& headers = {}, int timeout_s = 60) {
  Reply r;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return r;
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return r;
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req += body;
  size_t off = 0;
  while (off < req.size()) {
    const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413) and close before reading everything: read what it said
    off += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const auto head_end = raw.find("\r\n\r\n");
  if (raw.compare(0, 5, "HTTP/") != 0 || head_end == std::string::npos) return r;
  r.status = std::atoi(raw.c_str() + raw.find(' ') + 1);
  std::istringstream hs(raw.substr(0, head_end));
  std::string line;
  std::getline(hs, line);
  while (std::getline(hs, line)) {
    const auto c = line.find(':');
    if (c == std::string::npos) continue;
    std::string k = line.substr(0, c), v = line.substr(c + 1);
    for (auto& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
    r.headers[k] = v;
  }
  r.body = raw.substr(head_end + 4);
  return r;
}

std::string multipart(const std::string& boundary, const std::vector<std::pair<std::string, std::string>>& files) {
  std::string b;
  for (const auto& [name, bytes] : files)
    b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"" + name +
         "\"\r\nContent-Type: image/png\r\n\r\n" + bytes + "\r\n";
  return b + "--" + boundary + "--\r\n";
}

// moh-serve as a child process; stopped with SIGTERM (then SIGKILL) when the test ends.
class ServeProcess {
 public:
  explicit ServeProcess(const std::string& args) {
    log_ = moh::test::temp_dir("serve_log") + "/stderr.txt";
    int out[2];
    REQUIRE(::pipe(out) == 0);
    const std::string cmd = "exec " + moh::test::bin_path("moh-serve") + " --port 0 --threads " +
                            std::to_string(kThreads) + " --device cpu " + args + " 2>" + log_;
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    out_fd_ = out[0];
    // The first line: "moh-serve: listening on http://127.0.0.1:PORT/ ..."
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    while (Clock::now() < deadline && output_.find('\n') == std::string::npos) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) > 0) {
        char buf[512];
        const ssize_t n = ::read(out_fd_, buf, sizeof buf);
        if (n <= 0) break;
        output_.append(buf, static_cast<size_t>(n));
      }
    }
    std::smatch m;
    INFO("moh-serve printed: " << output_ << "\nstderr: " << read_file(log_));
    REQUIRE(std::regex_search(output_, m, std::regex(R"(listening on http://127\.0\.0\.1:([0-9]+)/)")));
    port_ = std::stoi(m[1]);
  }
  ~ServeProcess() {
    if (pid_ > 0) stop(20);
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // SIGTERM, then waits up to timeout_s for the exit (SIGKILL after): the exit status, or -1 when killed.
  int stop(int timeout_s) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
    while (Clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        drain();
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
  }
  std::string output() {
    drain();
    return output_;
  }
  std::string log() const { return read_file(log_); }

 private:
  void drain() {
    if (out_fd_ < 0) return;
    ::fcntl(out_fd_, F_SETFL, O_NONBLOCK);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out_fd_, buf, sizeof buf)) > 0) output_.append(buf, static_cast<size_t>(n));
  }
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  std::string output_, log_;
};

bool have_serve() {
  return MOH_NEED(fs::exists(moh::test::bin_path("moh-serve")),
                  "moh-serve was not built (cpp-httplib missing: apt-get install libcpp-httplib-dev)");
}

const std::string kVit = "--vit " + repo_path("models/moh-vit-fmnist.safetensors");
const std::string kDit = "--dit " + repo_path("models/moh-dit-fmnist.safetensors");

// Ten demo pictures (one per class, from moh-generate) and moh-classify's top-1 of each: made once per run.
struct Pictures {
  std::vector<std::string> files;
  std::vector<std::string> bytes;
  std::vector<int64_t> top1;
};
const Pictures& pictures() {
  static Pictures p = [] {
    Pictures r;
    const auto dir = moh::test::temp_dir("serve_pics");
    std::string out;
    int rc = moh::test::run_command(moh::test::bin_path("moh-generate") + " -q --weights " +
                                        repo_path("models/moh-dit-fmnist.safetensors") +
                                        " --class all --steps 20 --seed 5 --device cpu --threads " + std::to_string(kThreads) + " --out " + dir + "/p",
                                    &out);
    INFO(out);
    REQUIRE(rc == 0);
    rc = moh::test::run_command(moh::test::bin_path("moh-classify") + " --weights " +
                                    repo_path("models/moh-vit-fmnist.safetensors") +
                                    " --device cpu --threads " + std::to_string(kThreads) + " --topk 1 --json " + dir + "/c.json " + dir + "/p",
                                &out);
    INFO(out);
    REQUIRE(rc == 0);
    const auto classified = moh::test::read_json(dir + "/c.json");
    for (const auto& e : classified.at("results")) {
      r.files.push_back(e.at("path"));
      r.bytes.push_back(read_file(e.at("path")));
      r.top1.push_back(e.at("top").at(0).at("index"));
    }
    REQUIRE(r.files.size() == 10);
    return r;
  }();
  return p;
}

double metric(const std::string& text, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\n" + name + " ([0-9.e+-]+)"))) return -1;
  return std::stod(m[1]);
}

// Polls GET /v1/jobs/{id} until `pred` holds for its JSON or timeout_s passes; returns the last JSON.
template <typename Pred>
json wait_job(int port, const std::string& id, Pred pred, int timeout_s, const std::vector<std::string>& hdr = {}) {
  json j;
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  while (Clock::now() < deadline) {
    const auto r = http(port, "GET", "/v1/jobs/" + id + "?wait_ms=500&after=" +
                                         std::to_string(j.is_null() ? -1 : j.at("steps_done").get<int64_t>()), "", hdr);
    if (r.status != 200) break;
    j = r.js();
    if (pred(j)) break;
  }
  return j;
}

void check_json_error(const Reply& r, int status) {
  INFO("status " << r.status << " body " << r.body);
  CHECK(r.status == status);
  CHECK(r.header("content-type").find("application/json") == 0);
  const auto j = json::parse(r.body, nullptr, false);
  REQUIRE(!j.is_discarded());
  CHECK(j.at("error").get<std::string>().size() > 5);
}

}  // namespace

TEST_CASE("moh-serve: models, health, metrics, the page, classify and a generate job as moh-generate", "[serve]") {
  if (!have_serve()) return;
  const auto& pics = pictures();
  ServeProcess s(kVit + " " + kDit);
  const int port = s.port();

  auto h = http(port, "GET", "/healthz");
  REQUIRE(h.status == 200);
  CHECK(h.js().at("status") == "ok");

  auto m = http(port, "GET", "/v1/models");
  REQUIRE(m.status == 200);
  const auto mj = m.js();
  CHECK(mj.at("classifier").at("num_classes") == 10);
  CHECK(mj.at("classifier").at("class_names").at(1) == "Trouser");
  CHECK(mj.at("generator").at("class_names").size() == 10);
  CHECK(mj.at("generator").at("sampler_defaults").at("steps") == 100);
  CHECK(mj.at("generator").at("image_size") == 28);

  auto page = http(port, "GET", "/");
  CHECK(page.status == 200);
  CHECK(page.header("content-type").find("text/html") == 0);
  CHECK(page.body.find("/v1/classify") != std::string::npos);

  // Raw body, ?topk=3: moh-classify --json's fields.
  auto c = http(port, "POST", "/v1/classify?topk=3", pics.bytes[0], {"Content-Type: image/png"});
  REQUIRE(c.status == 200);
  auto cj = c.js();
  for (const char* k : {"model", "weights", "device", "dtype", "results"}) CHECK(cj.contains(k));
  CHECK(cj.at("weights") == "moh-vit-fmnist.safetensors");
  REQUIRE(cj.at("results").size() == 1);
  CHECK(cj.at("results")[0].at("ok") == true);
  CHECK(cj.at("results")[0].at("top").size() == 3);
  CHECK(cj.at("results")[0].at("top")[0].at("index") == pics.top1[0]);
  for (const char* k : {"index", "label", "probability"}) CHECK(cj.at("results")[0].at("top")[0].contains(k));

  // Multipart with three images (in order) and one non-image part: that one is reported, the others classified.
  auto body = multipart("XyZb0undary", {{"a.png", pics.bytes[1]}, {"b.png", pics.bytes[2]}, {"bad.png", "not a png"},
                                        {"c.png", pics.bytes[3]}});
  c = http(port, "POST", "/v1/classify", body, {"Content-Type: multipart/form-data; boundary=XyZb0undary"});
  REQUIRE(c.status == 200);
  cj = c.js();
  REQUIRE(cj.at("results").size() == 4);
  CHECK(cj.at("results")[0].at("path") == "a.png");
  CHECK(cj.at("results")[0].at("top")[0].at("index") == pics.top1[1]);
  CHECK(cj.at("results")[1].at("top")[0].at("index") == pics.top1[2]);
  CHECK(cj.at("results")[2].at("ok") == false);
  CHECK(cj.at("results")[2].at("error").get<std::string>().find("bad.png") != std::string::npos);
  CHECK(cj.at("results")[3].at("top")[0].at("index") == pics.top1[3]);
  CHECK(cj.at("results")[3].at("top").size() == 5);

  // A job and moh-generate with the same seed and settings: the same PNG bytes and sidecar settings.
  auto g = http(port, "POST", "/v1/generate", R"({"class": "Trouser", "seed": 11, "steps": 12, "n": 2})",
                {"Content-Type: application/json"});
  REQUIRE(g.status == 202);
  const std::string id = g.js().at("id");
  CHECK(g.header("location") == "/v1/jobs/" + id);
  const auto done = wait_job(port, id, [](const json& j) { return j.at("state") == "done" || j.at("state") == "failed"; }, 120);
  INFO(done.dump());
  REQUIRE(done.at("state") == "done");
  CHECK(done.at("progress") == 1.0);
  CHECK(done.at("steps_done") == 12);
  REQUIRE(done.at("images").size() == 2);

  const auto dir = moh::test::temp_dir("serve_gen");
  std::string out;
  REQUIRE(moh::test::run_command(moh::test::bin_path("moh-generate") + " -q --weights " +
                                     repo_path("models/moh-dit-fmnist.safetensors") +
                                     " --class Trouser --num-per-class 2 --steps 12 --seed 11 --device cpu --threads " +
                                     std::to_string(kThreads) + " --out " + dir + "/g",
                                 &out) == 0);
  const auto sidecar = moh::test::read_json(dir + "/g/generation.json");
  for (int k = 0; k < 2; ++k) {
    const auto img = http(port, "GET", "/v1/jobs/" + id + "/images/" + std::to_string(k) + ".png");
    REQUIRE(img.status == 200);
    CHECK(img.header("content-type") == "image/png");
    const std::string file = done.at("images")[k].at("file");
    CHECK(file == sidecar.at("files")[k]);
    CHECK(img.body == read_file(dir + "/g/" + file));  // byte for byte
  }
  const auto sc = http(port, "GET", "/v1/jobs/" + id + "/generation.json");
  REQUIRE(sc.status == 200);
  const auto scj = sc.js();
  CHECK(scj.at("settings") == sidecar.at("settings"));
  CHECK(scj.at("labels") == sidecar.at("labels"));
  CHECK(scj.at("classes") == sidecar.at("classes"));
  CHECK(scj.at("model") == sidecar.at("model"));
  CHECK(scj.at("files") == sidecar.at("files"));

  const auto prev = http(port, "GET", "/v1/jobs/" + id + "/preview.png");
  CHECK(prev.status == 200);
  CHECK(prev.body.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  check_json_error(http(port, "GET", "/v1/jobs/" + id + "/images/7.png"), 404);
  check_json_error(http(port, "GET", "/v1/jobs/nosuchjob"), 404);
  // DELETE of a finished job leaves it done.
  auto del = http(port, "DELETE", "/v1/jobs/" + id);
  CHECK(del.status == 200);
  CHECK(del.js().at("state") == "done");

  const auto met = http(port, "GET", "/metrics");
  REQUIRE(met.status == 200);
  CHECK(met.header("content-type").find("text/plain") == 0);
  CHECK(met.body.find("moh_http_requests_total{route=\"POST /v1/classify\",code=\"200\"} 2") != std::string::npos);
  CHECK(met.body.find("moh_http_request_duration_seconds_bucket{route=\"POST /v1/classify\",le=\"+Inf\"} 2") !=
        std::string::npos);
  CHECK(met.body.find("moh_classify_batch_size_count 2") != std::string::npos);
  CHECK(metric(met.body, "moh_images_generated_total") == 2);
  CHECK(metric(met.body, "moh_generate_queue_length") == 0);
  CHECK(metric(met.body, "moh_classify_images_total") == 4);
}

TEST_CASE("moh-serve: 32 concurrent classify requests get moh-classify's top-1 in fewer forward passes", "[serve]") {
  if (!have_serve()) return;
  const auto& pics = pictures();
  ServeProcess s(kVit + " --max-batch 32 --batch-window-ms 100");
  const int port = s.port();
  constexpr int kRequests = 32;
  std::vector<int64_t> got(kRequests, -1);
  std::vector<int> status(kRequests, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i)
    threads.emplace_back([&, i] {
      const auto r = http(port, "POST", "/v1/classify", pics.bytes[i % 10], {"Content-Type: image/png"});
      status[i] = r.status;
      if (r.status == 200) got[i] = r.js().at("results")[0].at("top")[0].at("index");
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kRequests; ++i) {
    INFO("request " << i);
    CHECK(status[i] == 200);
    CHECK(got[i] == pics.top1[i % 10]);
  }
  const auto met = http(port, "GET", "/metrics").body;
  const double passes = metric(met, "moh_classify_forward_passes_total");
  INFO(met);
  CHECK(passes >= 1);
  CHECK(passes < kRequests);
  CHECK(metric(met, "moh_classify_images_total") == kRequests);
}

TEST_CASE("moh-serve: cancel, a full queue answers 429, SIGTERM cancels the running job and exits 0", "[serve]") {
  if (!have_serve()) return;
  ServeProcess s(kDit + " --max-queue 2");
  const int port = s.port();
  const std::vector<std::string> js = {"Content-Type: application/json"};
  const std::string slow = R"({"class": 3, "steps": 1000, "n": 16, "seed": 1})";
  auto a = http(port, "POST", "/v1/generate", slow, js);
  auto b = http(port, "POST", "/v1/generate", slow, js);
  REQUIRE(a.status == 202);
  REQUIRE(b.status == 202);
  check_json_error(http(port, "POST", "/v1/generate", slow, js), 429);  // 2 queued or running = --max-queue
  const std::string ida = a.js().at("id"), idb = b.js().at("id");
  // b is queued behind a: cancelled at once.
  auto db = http(port, "DELETE", "/v1/jobs/" + idb);
  CHECK(db.status == 200);
  CHECK(db.js().at("state") == "cancelled");
  // a runs; after a step it has a preview; DELETE stops it at its next step.
  auto ja = wait_job(port, ida, [](const json& j) { return j.at("steps_done").get<int64_t>() >= 2; }, 60);
  REQUIRE(ja.at("state") == "running");
  CHECK(ja.at("eta_seconds").is_number());
  CHECK(http(port, "GET", "/v1/jobs/" + ida + "/preview.png").status == 200);
  check_json_error(http(port, "GET", "/v1/jobs/" + ida + "/images/0.png"), 409);
  CHECK(http(port, "DELETE", "/v1/jobs/" + ida).status == 200);
  ja = wait_job(port, ida, [](const json& j) { return j.at("state") != "running"; }, 60);
  CHECK(ja.at("state") == "cancelled");
  CHECK(ja.at("steps_done").get<int64_t>() < ja.at("steps_total").get<int64_t>());
  // The queue has room again; a new long job runs, then SIGTERM: cancelled, exit 0, promptly.
  auto c = http(port, "POST", "/v1/generate", slow, js);
  REQUIRE(c.status == 202);
  wait_job(port, c.js().at("id"), [](const json& j) { return j.at("steps_done").get<int64_t>() >= 1; }, 60);
  const auto t0 = Clock::now();
  const int rc = s.stop(30);
  INFO(s.output() << s.log());
  CHECK(rc == 0);
  CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 20);
  CHECK(s.output().find("stopped by signal 15") != std::string::npos);
  CHECK(http(port, "GET", "/healthz", "", {}, 5).status == 0);  // no longer accepting
}

TEST_CASE("moh-serve: bad input gets 4xx JSON and the server keeps serving", "[serve]") {
  if (!have_serve()) return;
  const auto& pics = pictures();
  ServeProcess s(kVit + " " + kDit + " --max-upload-mb 16");
  const int port = s.port();
  const std::vector<std::string> js = {"Content-Type: application/json"};
  // Malformed multipart: a boundary that never appears.
  check_json_error(http(port, "POST", "/v1/classify", "garbage without the boundary\r\n",
                        {"Content-Type: multipart/form-data; boundary=abc123"}),
                   400);
  // 60 MB body: 413, the limit named.
  const auto big = http(port, "POST", "/v1/classify", std::string(60u << 20, 'x'), {"Content-Type: image/png"});
  check_json_error(big, 413);
  CHECK(big.body.find("--max-upload-mb") != std::string::npos);
  // A non-image: 400 saying why.
  const auto non = http(port, "POST", "/v1/classify", "this is plain text, not a picture", {"Content-Type: image/png"});
  check_json_error(non, 400);
  CHECK(non.body.find("decode") != std::string::npos);
  check_json_error(http(port, "POST", "/v1/classify", "", {"Content-Type: image/png"}), 400);
  // A truncated PNG.
  check_json_error(http(port, "POST", "/v1/classify", pics.bytes[0].substr(0, 40), {"Content-Type: image/png"}), 400);
  check_json_error(http(port, "POST", "/v1/classify?topk=zero", pics.bytes[0]), 400);
  // Unknown class: did you mean.
  const auto unk = http(port, "POST", "/v1/generate", R"({"class": "Trowser"})", js);
  check_json_error(unk, 400);
  CHECK(unk.body.find("Trouser") != std::string::npos);
  check_json_error(http(port, "POST", "/v1/generate", "{not json", js), 400);
  check_json_error(http(port, "POST", "/v1/generate", R"({"class": 1, "steps": 1})", js), 400);
  check_json_error(http(port, "POST", "/v1/generate", R"({"class": 1, "n": 1000})", js), 400);
  check_json_error(http(port, "POST", "/v1/generate", R"({"class": 1, "sampler": "euler"})", js), 400);
  check_json_error(http(port, "POST", "/v1/generate", R"({"class": 1, "path": "/etc/passwd"})", js), 400);
  check_json_error(http(port, "GET", "/v1/nothing-here"), 404);
  check_json_error(http(port, "GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd"), 404);
  // Still serving.
  CHECK(http(port, "GET", "/healthz").status == 200);
  const auto ok = http(port, "POST", "/v1/classify", pics.bytes[4], {"Content-Type: image/png"});
  REQUIRE(ok.status == 200);
  CHECK(ok.js().at("results")[0].at("top")[0].at("index") == pics.top1[4]);
  const auto met = http(port, "GET", "/metrics").body;
  CHECK(met.find("moh_http_requests_total{route=\"POST /v1/classify\",code=\"413\"} 1") != std::string::npos);
}

TEST_CASE("moh-serve: --token guards every endpoint but /healthz", "[serve]") {
  if (!have_serve()) return;
  const auto& pics = pictures();
  ServeProcess s(kVit + " --token s3cret");
  const int port = s.port();
  CHECK(http(port, "GET", "/healthz").status == 200);
  for (const char* path : {"/", "/metrics", "/v1/models", "/v1/jobs/1-abc"}) {
    INFO(path);
    check_json_error(http(port, "GET", path), 401);
    check_json_error(http(port, "GET", path, "", {"Authorization: Bearer wrong"}), 401);
  }
  check_json_error(http(port, "POST", "/v1/classify", pics.bytes[0], {"Authorization: Bearer wrong"}), 401);
  const auto ok = http(port, "POST", "/v1/classify", pics.bytes[0], {"Authorization: Bearer s3cret"});
  CHECK(ok.status == 200);
  CHECK(http(port, "GET", "/?token=s3cret").status == 200);  // the page, opened from a browser
  CHECK(http(port, "GET", "/v1/models", "", {"Authorization: Bearer s3cret"}).status == 200);
  // No generator loaded: that half of the API says so.
  check_json_error(http(port, "POST", "/v1/generate", R"({"class": 1})", {"Authorization: Bearer s3cret"}), 404);
}
