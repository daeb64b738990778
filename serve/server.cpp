// moh-serve's routes and HTTP plumbing on cpp-httplib (see server.h).
#include "serve/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/runtime/device.h"
#include "common/error.h"
#include "common/image/image_io.h"
#include "common/runtime/interrupt.h"
#include "common/runtime/precision.h"
#include "common/runtime/threads.h"
#include "serve/classify_batcher.h"
#include "serve/index_html.h"
#include "serve/job_queue.h"
#include "serve/metrics.h"
#include "vit/config.h"

namespace moh::serve {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Start of the request this HTTP thread is handling (set before routing; read by the logger, which runs on the same
// thread once the response is ready). Unset for requests refused before routing (oversized bodies).
thread_local Clock::time_point t_request_start{};

// An error the handler answers with its own status (404 unknown job, 409 not ready, ...).
struct HttpError : Error {
  int status;
  HttpError(int s, const std::string& what) : Error(what), status(s) {}
};

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(j.dump(2) + "\n", "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& why) {
  send_json(res, status, json{{"error", why}, {"status", status}});
}

// Metrics label of a path: job ids and image indices collapse so the label set stays small.
std::string route_label(const std::string& method, const std::string& path) {
  static const std::vector<std::pair<std::string, std::string>> fixed = {
      {"/", "/"}, {"/healthz", "/healthz"}, {"/metrics", "/metrics"}, {"/v1/models", "/v1/models"},
      {"/v1/classify", "/v1/classify"}, {"/v1/generate", "/v1/generate"}};
  for (const auto& [p, label] : fixed)
    if (path == p) return method + " " + label;
  if (path.rfind("/v1/jobs/", 0) == 0) {
    if (path.find("/images/") != std::string::npos) return method + " /v1/jobs/{id}/images/{k}.png";
    if (path.size() > 12 && path.compare(path.size() - 12, 12, "/preview.png") == 0)
      return method + " /v1/jobs/{id}/preview.png";
    if (path.size() > 16 && path.compare(path.size() - 16, 16, "/generation.json") == 0)
      return method + " /v1/jobs/{id}/generation.json";
    return method + " /v1/jobs/{id}";
  }
  return "other";
}

std::string reason(int status) {
  switch (status) {
    case 400: return "bad request (malformed HTTP, multipart or parameters)";
    case 401: return "unauthorized";
    case 404: return "no such endpoint";
    case 405: return "method not allowed";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    case 416: return "range not satisfiable";
    case 429: return "too many requests";
    case 500: return "internal server error";
    case 503: return "shutting down";
  }
  return "HTTP error " + std::to_string(status);
}

int parse_int(const std::string& what, const std::string& s, long lo, long hi) {
  MOH_CHECK(!s.empty() && s.size() < 12 && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit((unsigned char)c); }),
            what, " must be an integer in ", lo, "..", hi, ", got '", s.substr(0, 40), "'");
  const long v = std::stol(s);
  MOH_CHECK(v >= lo && v <= hi, what, " must be in ", lo, "..", hi, ", got ", v);
  return static_cast<int>(v);
}

std::string file_name(const std::string& path) {
  return path.empty() ? std::string("random") : std::filesystem::path(path).filename().string();
}

}  // namespace

struct Server::Impl {
  ServeOptions o;
  vit::Classifier* clf;
  dit::Generator* gen;
  Metrics metrics;
  std::unique_ptr<ClassifyBatcher> batcher;
  std::unique_ptr<JobQueue> jobs;
  httplib::Server http;
  std::atomic<bool> shut{false};

  Impl(ServeOptions opts, vit::Classifier* c, dit::Generator* g) : o(std::move(opts)), clf(c), gen(g) {
    if (clf) batcher = std::make_unique<ClassifyBatcher>(*clf, o.max_batch, o.batch_window_ms, metrics);
    if (gen) jobs = std::make_unique<JobQueue>(*gen, o.max_queue, metrics);
    metrics.set_gauge("moh_generate_queue_length", "Generation jobs queued or running.",
                      [this] { return jobs ? double(jobs->pending()) : 0.0; });
    setup();
  }

  // Wraps a handler: moh::Error -> 400 with its message, QueueFull -> 429, HttpError -> its status, the rest 500.
  httplib::Server::Handler guard(std::function<void(const httplib::Request&, httplib::Response&)> fn) {
    return [fn](const httplib::Request& req, httplib::Response& res) {
      try {
        fn(req, res);
      } catch (const HttpError& e) {
        send_error(res, e.status, e.what());
      } catch (const QueueFull& e) {
        res.set_header("Retry-After", "5");
        send_error(res, 429, e.what());
      } catch (const Interrupted&) {
        send_error(res, 503, "the server is shutting down");
      } catch (const Error& e) {
        send_error(res, 400, e.what());
      } catch (const json::exception& e) {
        send_error(res, 400, std::string("bad JSON: ") + e.what());
      } catch (const std::exception& e) {
        send_error(res, 500, e.what());
      }
    };
  }

  bool authorized(const httplib::Request& req) const {
    if (o.token.empty() || req.path == "/healthz") return true;
    if (req.get_header_value("Authorization") == "Bearer " + o.token) return true;
    // The page itself may be opened as /?token=...: a browser cannot send a header when navigating; the page's
    // script then sends the header on every API call.
    return req.path == "/" && req.has_param("token") && req.get_param_value("token") == o.token;
  }

  std::shared_ptr<Job> job_of(const httplib::Request& req) {
    if (!jobs) throw HttpError(404, "no generator loaded (start moh-serve with --dit)");
    auto job = jobs->find(req.matches[1]);
    if (!job) throw HttpError(404, "no job '" + std::string(req.matches[1]) + "' (unknown, or finished long ago)");
    return job;
  }

  void setup() {
    auto& s = http;
    const int threads = std::max(1, o.http_threads);
    s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    s.set_payload_max_length(static_cast<size_t>(o.max_upload_mb * 1024.0 * 1024.0));
    s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      t_request_start = Clock::now();
      if (!authorized(req)) {
        res.set_header("WWW-Authenticate", "Bearer");
        send_error(res, 401, "missing or wrong bearer token: send 'Authorization: Bearer <token>' (--token)");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler already explained itself
      std::string why = reason(res.status);
      if (res.status == 413) why += ": the limit is --max-upload-mb " + std::to_string(o.max_upload_mb) + " MB";
      send_error(res, res.status, why);
    });
    s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      double secs = -1;
      if (t_request_start != Clock::time_point{}) secs = std::chrono::duration<double>(Clock::now() - t_request_start).count();
      t_request_start = Clock::time_point{};
      metrics.request(route_label(req.method, req.path), res.status, secs);
    });

    s.Get("/", guard([](const httplib::Request&, httplib::Response& res) {
      res.set_content(kIndexHtml, "text/html; charset=utf-8");
    }));
    s.Get("/healthz", guard([this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, json{{"status", shut ? "stopping" : "ok"}, {"classifier", clf != nullptr},
                               {"generator", gen != nullptr}});
    }));
    s.Get("/metrics", guard([this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.prometheus(), "text/plain; version=0.0.4");
    }));
    s.Get("/v1/models", guard([this](const httplib::Request& req, httplib::Response& res) { models(res); }));
    s.Post("/v1/classify", guard([this](const httplib::Request& req, httplib::Response& res) { classify(req, res); }));
    s.Post("/v1/generate", guard([this](const httplib::Request& req, httplib::Response& res) { generate(req, res); }));
    // ?wait_ms=N&after=S (long poll): answer once the job has moved past step S or ended, at most N ms later.
    s.Get(R"(/v1/jobs/([A-Za-z0-9-]+))", guard([this](const httplib::Request& req, httplib::Response& res) {
      auto job = job_of(req);
      if (req.has_param("wait_ms")) {
        const int wait_ms = parse_int("wait_ms", req.get_param_value("wait_ms"), 0, 10000);
        const std::string a = req.has_param("after") ? req.get_param_value("after") : "-1";
        const long after = a == "-1" ? -1 : parse_int("after", a, 0, 1 << 30);
        const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
        auto moved = [&] {
          std::lock_guard<std::mutex> l(job->mu);
          return job->steps_done != after || (job->state != JobState::kQueued && job->state != JobState::kRunning);
        };
        while (!moved() && !shut && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      send_json(res, 200, job->status_json());
    }));
    s.Delete(R"(/v1/jobs/([A-Za-z0-9-]+))", guard([this](const httplib::Request& req, httplib::Response& res) {
      auto job = job_of(req);
      jobs->cancel(job->id);
      send_json(res, 200, job->status_json());
    }));
    s.Get(R"(/v1/jobs/([A-Za-z0-9-]+)/preview.png)", guard([this](const httplib::Request& req, httplib::Response& res) {
      auto job = job_of(req);
      const auto png = jobs->preview_png(*job);
      if (png.empty()) throw HttpError(404, "no preview yet: job " + job->id + " has not run a sampler step");
      res.set_header("Cache-Control", "no-store");
      res.set_content(reinterpret_cast<const char*>(png.data()), png.size(), "image/png");
    }));
    s.Get(R"(/v1/jobs/([A-Za-z0-9-]+)/images/([0-9]{1,6})\.png)",
          guard([this](const httplib::Request& req, httplib::Response& res) {
            auto job = job_of(req);
            const size_t k = std::stoul(req.matches[2]);
            std::lock_guard<std::mutex> l(job->mu);
            if (job->state != JobState::kDone)
              throw HttpError(409, std::string("job ") + job->id + " is " + job_state_name(job->state) +
                                       "; its images are there when it is done");
            if (k >= job->pngs.size())
              throw HttpError(404, "job " + job->id + " has images 0.." + std::to_string(job->pngs.size() - 1) +
                                       ", not " + std::to_string(k));
            res.set_content(reinterpret_cast<const char*>(job->pngs[k].data()), job->pngs[k].size(), "image/png");
          }));
    s.Get(R"(/v1/jobs/([A-Za-z0-9-]+)/generation\.json)",
          guard([this](const httplib::Request& req, httplib::Response& res) {
            auto job = job_of(req);
            std::lock_guard<std::mutex> l(job->mu);
            if (job->state != JobState::kDone)
              throw HttpError(409, std::string("job ") + job->id + " is " + job_state_name(job->state) +
                                       "; its sidecar is there when it is done");
            send_json(res, 200, job->sidecar);
          }));
  }

  void models(httplib::Response& res) {
    json j{{"classifier", nullptr}, {"generator", nullptr}};
    if (clf) {
      const auto& cfg = clf->config();
      json names = json::array();
      for (int64_t i = 0; i < cfg.num_classes; ++i) names.push_back(clf->label(i));
      j["classifier"] = {{"model", cfg.name},          {"weights", file_name(o.vit_weights)},
                         {"config", vit::vit_config_to_json(cfg)}, {"config_origin", clf->config_origin()},
                         {"device", device_to_string(clf->device())},
                         {"dtype", precision_to_string(clf->precision())}, {"num_classes", cfg.num_classes},
                         {"class_names", names},    {"max_batch", o.max_batch},
                         {"batch_window_ms", o.batch_window_ms}};
    }
    if (gen) {
      json names = json::array();
      for (int64_t i = 0; i < gen->config().num_classes; ++i) names.push_back(gen->class_name(i));
      auto d = gen->default_params();
      j["generator"] = {{"model", gen->config().name},
                        {"weights", file_name(o.dit_weights)},
                        {"config", gen->config().to_json()},
                        {"config_origin", gen->source().config_origin},
                        {"device", device_to_string(gen->device())},
                        {"dtype", precision_to_string(gen->precision())},
                        {"image_size", gen->image_size()},
                        {"num_classes", gen->config().num_classes},
                        {"class_names", names},
                        {"sampler_defaults", {{"sampler", d.sampler}, {"steps", d.steps}, {"cfg_scale", d.cfg_scale},
                                              {"cfg_all_channels", d.cfg_all_channels},
                                              {"clip_denoised", d.clip_denoised}, {"seed", d.seed},
                                              {"batch_size", d.batch_size}}},
                        {"max_queue", o.max_queue},
                        {"max_images_per_job", o.max_images_per_job}};
    }
    send_json(res, 200, j);
  }

  void classify(const httplib::Request& req, httplib::Response& res) {
    if (!clf) throw HttpError(404, "no classifier loaded (start moh-serve with --vit)");
    const int k = req.has_param("topk") ? parse_int("topk", req.get_param_value("topk"), 1, o.max_topk) : 5;
    // (name, bytes) of each image: the multipart file parts in order, or the raw body.
    std::vector<std::pair<std::string, const std::string*>> items;
    const bool multipart = req.is_multipart_form_data();
    if (multipart) {
      for (const auto& [field, part] : req.files)
        items.emplace_back(part.filename.empty() ? field : part.filename, &part.content);
      MOH_CHECK(!items.empty(), "the multipart body holds no parts: send each image as a form-data part");
    } else {
      MOH_CHECK(!req.body.empty(), "empty body: send the image bytes as the body, or images as multipart/form-data");
      items.emplace_back("body", &req.body);
    }
    use_one_cpu_thread_here();  // decoding + preprocessing on this HTTP thread stays off the model's cores
    std::vector<vit::ClassifyResult> results(items.size());
    std::vector<torch::Tensor> inputs;
    std::vector<size_t> which;
    for (size_t i = 0; i < items.size(); ++i) {
      results[i].path = items[i].first;
      try {
        const auto& bytes = *items[i].second;
        MOH_CHECK(!bytes.empty(), "image '", items[i].first, "' is empty");
        const auto img = decode_image_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                             items[i].first);
        inputs.push_back(clf->preprocess(img));
        which.push_back(i);
      } catch (const std::exception& e) {
        results[i].error = e.what();
      }
    }
    if (inputs.empty()) {
      if (items.size() == 1) throw HttpError(400, "cannot decode the image: " + results[0].error);
      throw HttpError(400, "none of the " + std::to_string(items.size()) + " images could be decoded; first: " +
                               results[0].error);
    }
    auto top = batcher->classify(std::move(inputs), k);
    for (size_t j = 0; j < which.size(); ++j) {
      results[which[j]].ok = true;
      results[which[j]].top = std::move(top[j]);
    }
    // The fields of moh-classify --json.
    json out{{"model", clf->config().name},
             {"weights", file_name(o.vit_weights)},
             {"device", device_to_string(clf->device())},
             {"dtype", precision_to_string(clf->precision())},
             {"results", json::array()}};
    for (const auto& r : results) {
      json e{{"path", r.path}, {"ok", r.ok}};
      if (!r.ok) e["error"] = r.error;
      e["top"] = json::array();
      for (const auto& p : r.top) e["top"].push_back({{"index", p.index}, {"label", p.label}, {"probability", p.probability}});
      out["results"].push_back(e);
    }
    send_json(res, 200, out);
  }

  void generate(const httplib::Request& req, httplib::Response& res) {
    if (!gen) throw HttpError(404, "no generator loaded (start moh-serve with --dit)");
    json body;
    try {
      body = json::parse(req.body);
    } catch (const json::exception& e) {
      throw HttpError(400, std::string("the body is not JSON: ") + e.what());
    }
    MOH_CHECK(body.is_object(), "the body must be a JSON object such as {\"class\": \"Trouser\", \"seed\": 1}");
    static const std::vector<std::string> known = {"class", "seed", "steps", "cfg_scale", "sampler", "n", "eta"};
    for (const auto& [key, v] : body.items())
      MOH_CHECK(std::find(known.begin(), known.end(), key) != known.end(), "unknown field '", key,
                "'; the fields are class, seed, steps, cfg_scale, sampler, n, eta");
    MOH_CHECK(body.contains("class"), "field 'class' is required: a class name or index (GET /v1/models lists them)");
    const auto& c = body["class"];
    MOH_CHECK(c.is_string() || c.is_number_integer(), "field 'class' must be a name or an index");
    const std::string query = c.is_string() ? c.get<std::string>() : std::to_string(c.get<int64_t>());
    std::vector<int64_t> classes;
    try {
      classes = gen->resolve_classes({query});
    } catch (const Error& e) {
      throw HttpError(400, std::string("class: ") + e.what());
    }
    auto p = gen->default_params();
    p.progress = false;
    if (body.contains("seed")) {
      MOH_CHECK(body["seed"].is_number_integer() && body["seed"].get<int64_t>() >= 0, "'seed' must be an integer >= 0");
      p.seed = body["seed"].get<uint64_t>();
    }
    if (body.contains("steps")) {
      MOH_CHECK(body["steps"].is_number_integer(), "'steps' must be an integer");
      p.steps = body["steps"].get<int64_t>();
      MOH_CHECK(p.steps >= 2 && p.steps <= 1000, "'steps' must be in 2..1000, got ", p.steps);
    }
    if (body.contains("cfg_scale")) {
      MOH_CHECK(body["cfg_scale"].is_number(), "'cfg_scale' must be a number");
      p.cfg_scale = body["cfg_scale"].get<double>();
      MOH_CHECK(p.cfg_scale >= 0 && p.cfg_scale <= 100, "'cfg_scale' must be in 0..100, got ", p.cfg_scale);
    }
    if (body.contains("eta")) {
      MOH_CHECK(body["eta"].is_number(), "'eta' must be a number");
      p.eta = body["eta"].get<double>();
      MOH_CHECK(p.eta >= 0 && p.eta <= 10, "'eta' must be in 0..10, got ", p.eta);
    }
    if (body.contains("sampler")) {
      MOH_CHECK(body["sampler"].is_string(), "'sampler' must be \"ddpm\" or \"ddim\"");
      p.sampler = body["sampler"].get<std::string>();
      MOH_CHECK(p.sampler == "ddpm" || p.sampler == "ddim", "'sampler' must be \"ddpm\" or \"ddim\", got '",
                p.sampler, "'");
    }
    int64_t n = 1;
    if (body.contains("n")) {
      MOH_CHECK(body["n"].is_number_integer(), "'n' must be an integer");
      n = body["n"].get<int64_t>();
    }
    MOH_CHECK(n >= 1 && n * int64_t(classes.size()) <= o.max_images_per_job, "'n' must be in 1..",
              o.max_images_per_job / std::max<size_t>(1, classes.size()), " (--max-images-per-job ",
              o.max_images_per_job, "), got ", n);
    JobRequest r;
    for (auto cl : classes)
      for (int64_t i = 0; i < n; ++i) p.labels.push_back(cl);
    r.params = p;
    r.classes = classes;
    r.num_per_class = n;
    auto job = jobs->submit(std::move(r));
    res.set_header("Location", "/v1/jobs/" + job->id);
    send_json(res, 202, job->status_json());
  }
};

Server::Server(ServeOptions o, vit::Classifier* clf, dit::Generator* gen)
    : impl_(std::make_unique<Impl>(std::move(o), clf, gen)) {}

Server::~Server() {
  shutdown();
  if (impl_->jobs) impl_->jobs->stop();
  if (impl_->batcher) impl_->batcher->stop();
}

int Server::bind() {
  auto& o = impl_->o;
  if (o.port == 0) {
    const int port = impl_->http.bind_to_any_port(o.host);
    MOH_CHECK(port > 0, "cannot listen on ", o.host, " (any port): is the address valid on this machine?");
    return port;
  }
  MOH_CHECK(impl_->http.bind_to_port(o.host, o.port), "cannot listen on ", o.host, ":", o.port,
            ": is the port in use or the address not this machine's? (--port 0 picks a free port)");
  return o.port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::shutdown() {
  if (!impl_->shut.exchange(true) && impl_->jobs) impl_->jobs->cancel_all();
  impl_->http.stop();  // a no-op until listening has begun: callers repeat it until run() returns
}

}  // namespace moh::serve
