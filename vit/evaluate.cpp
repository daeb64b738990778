// ImageNet-style evaluation (MoH-ViT/engine.py `evaluate` + datasets.py ImageFolder, timm `accuracy`): decode and
// preprocess in worker threads feeding a bounded queue while the calling thread runs the model.
#include "vit/evaluate.h"


#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/imagenet.h"
#include "common/idx.h"
#include "common/progress.h"
#include "common/threads.h"

namespace moh::vit {
namespace fs = std::filesystem;

// ------------------------------------------------------------------------------------------------- listing
int64_t class_index_from_digits(const std::string& name) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) return -1;
  const auto first = name.find_first_not_of('0');
  const size_t significant = first == std::string::npos ? 0 : name.size() - first;
  MOH_CHECK(significant <= 12, "class '", name, "' is a number with ", significant,
            " digits, too large to be a class index; name class folders by index, class name or wnid");
  return first == std::string::npos ? 0 : std::stoll(name.substr(first));
}

ClassResolver class_resolver(const ViTConfig& cfg) {
  return [cfg](const std::string& name) -> int64_t {
    for (size_t i = 0; i < cfg.class_names.size(); ++i)
      if (cfg.class_names[i] == name) return (int64_t)i;
    const int64_t v = class_index_from_digits(name);
    if (v >= 0) return v < cfg.num_classes ? v : -1;
    if (cfg.num_classes == 1000 && cfg.class_names.empty()) {
      try {
        return resolve_imagenet_class(name);
      } catch (const Error&) {
        return -1;
      }
    }
    return -1;
  };
}

EvalDataset list_imagefolder(const std::string& root_in, const ClassResolver& resolve, int64_t num_classes) {
  std::error_code ec;
  MOH_CHECK(fs::is_directory(root_in, ec), "dataset folder '", root_in, "' does not exist or is not a folder");
  EvalDataset ds;
  ds.root = fs::is_directory(fs::path(root_in) / "val", ec) ? (fs::path(root_in) / "val").string() : root_in;
  ds.layout = "imagefolder";
  std::vector<std::string> classes;
  fs::directory_iterator it(ds.root, fs::directory_options::follow_directory_symlink, ec), end;
  MOH_CHECK(!ec, "cannot list dataset folder '", ds.root, "': ", ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::error_code ec2;
    if (it->is_directory(ec2)) classes.push_back(it->path().filename().string());
  }
  std::sort(classes.begin(), classes.end());
  MOH_CHECK(!classes.empty(), "dataset folder '", ds.root, "' has no class sub-folders (expected <class>/<image> ",
            "files, ImageNet style val/<wnid>/*.JPEG); for a flat folder pass --labels FILE");
  std::vector<int64_t> index(classes.size());
  bool all_known = true;
  std::set<int64_t> used;
  for (size_t i = 0; i < classes.size(); ++i) {
    index[i] = resolve(classes[i]);
    all_known = all_known && index[i] >= 0 && used.insert(index[i]).second;
  }
  if (all_known) {
    ds.mapping = "folder names";
  } else {
    // torchvision ImageFolder: classes numbered in sorted folder order.
    MOH_CHECK((int64_t)classes.size() <= num_classes, "dataset folder '", ds.root, "' has ", classes.size(),
              " class folders but the model has ", num_classes, " classes, and the folder names are not class ",
              "names/ids of the model; rename the folders (e.g. ImageNet wnids) or pass --labels");
    for (size_t i = 0; i < classes.size(); ++i) index[i] = (int64_t)i;
    ds.mapping = "sorted folder order";
  }
  for (size_t i = 0; i < classes.size(); ++i) {
    for (auto& f : list_image_files((fs::path(ds.root) / classes[i]).string())) ds.samples.push_back({f, index[i]});
  }
  MOH_CHECK(!ds.samples.empty(), "dataset folder '", ds.root, "' has class folders but no image files");
  return ds;
}

EvalDataset list_labeled_folder(const std::string& root, const std::string& labels_file,
                                const ClassResolver& resolve) {
  std::error_code ec;
  MOH_CHECK(fs::is_directory(root, ec), "dataset folder '", root, "' does not exist or is not a folder");
  std::ifstream in(labels_file);
  MOH_CHECK(in.good(), "cannot open label file '", labels_file, "'");
  EvalDataset ds;
  ds.root = root;
  ds.layout = "labels-file";
  ds.mapping = "label file";
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    // The label is the last field, so file names may contain spaces.
    const auto split = line.find_last_of(" \t");
    MOH_CHECK(split != std::string::npos && split > first, "label file '", labels_file, "' line ", lineno,
              ": expected 'filename label', got '", line, "'");
    std::string file = line.substr(first, split - first);
    while (!file.empty() && (file.back() == ' ' || file.back() == '\t')) file.pop_back();
    const std::string label = line.substr(split + 1);
    const auto idx = resolve(label);
    MOH_CHECK(idx >= 0, "label file '", labels_file, "' line ", lineno, ": label '", label,
              "' is not a class of this model (use a class index, an ImageNet wnid or a class name)");
    const fs::path p(file);
    ds.samples.push_back({p.is_absolute() ? file : (fs::path(root) / p).string(), idx});
  }
  MOH_CHECK(!ds.samples.empty(), "label file '", labels_file, "' lists no images");
  return ds;
}

bool has_idx_files(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return false;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().find("-images-idx3-ubyte") != std::string::npos) return true;
  return false;
}

EvalDataset list_idx_dataset(const std::string& root, const std::string& split) {
  const auto data = load_fashion_mnist(root, split);
  EvalDataset ds;
  ds.root = root;
  ds.layout = "idx";
  ds.mapping = "IDX labels";
  ds.images_u8 = data.images;
  const std::string file = (split == "train" ? "train" : "t10k") + std::string("-images-idx3-ubyte#");
  auto labels = data.labels.accessor<int64_t, 1>();
  ds.samples.reserve(size_t(labels.size(0)));
  for (int64_t i = 0; i < labels.size(0); ++i) ds.samples.push_back({file + std::to_string(i), labels[i]});
  return ds;
}

EvalDataset list_eval_dataset(const std::string& root, const std::string& labels_file, const ViTConfig& cfg,
                              const std::string& split) {
  if (labels_file.empty() && has_idx_files(root)) return list_idx_dataset(root, split);
  const auto resolve = class_resolver(cfg);
  return labels_file.empty() ? list_imagefolder(root, resolve, cfg.num_classes)
                             : list_labeled_folder(root, labels_file, resolve);
}

EvalDataset subset_evenly(const EvalDataset& ds, int64_t limit) {
  const auto n = (int64_t)ds.samples.size();
  if (limit <= 0 || limit >= n) return ds;
  EvalDataset out = ds;
  out.samples.clear();
  std::vector<int64_t> picked;
  for (int64_t i = 0; i < limit; ++i) {
    picked.push_back(i * n / limit);
    out.samples.push_back(ds.samples[picked.back()]);
  }
  if (ds.images_u8.defined()) out.images_u8 = ds.images_u8.index_select(0, torch::tensor(picked));
  return out;
}

// ---------------------------------------------------------------------------------------------- evaluation
namespace {

// One preprocessed batch: the decoded samples' inputs and dataset indices, plus the ones that failed.
struct Batch {
  torch::Tensor input;  // [b, 3, S, S] float32 (pinned when the model runs on CUDA); undefined when b == 0
  std::vector<int64_t> samples;
  std::vector<EvalFailure> failures;
  std::vector<int64_t> failed_samples;
  std::exception_ptr error;  // an unexpected worker failure, re-thrown on the calling thread
};

// Bounded multi-producer single-consumer queue: workers block while `capacity` batches wait for the model.
class BatchQueue {
 public:
  explicit BatchQueue(size_t capacity) : capacity_(capacity) {}
  void push(Batch b) {
    std::unique_lock<std::mutex> lk(m_);
    not_full_.wait(lk, [&] { return q_.size() < capacity_ || closed_; });
    q_.push_back(std::move(b));
    not_empty_.notify_one();
  }
  Batch pop() {
    std::unique_lock<std::mutex> lk(m_);
    not_empty_.wait(lk, [&] { return !q_.empty(); });
    Batch b = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return b;
  }
  void close() {  // lets blocked producers finish when the consumer stops early
    std::lock_guard<std::mutex> lk(m_);
    closed_ = true;
    not_full_.notify_all();
  }

 private:
  size_t capacity_;
  bool closed_ = false;
  std::deque<Batch> q_;
  std::mutex m_;
  std::condition_variable not_full_, not_empty_;
};

}  // namespace

EvalResult evaluate(Classifier& clf, const EvalDataset& ds, const EvalOptions& o) {
  MOH_CHECK(o.batch_size >= 1, "batch size must be >= 1 (got ", o.batch_size, ")");
  MOH_CHECK(o.workers >= 1, "workers must be >= 1 (got ", o.workers, ")");
  MOH_CHECK(o.topk >= 1, "top-k must be >= 1 (got ", o.topk, ")");
  const auto& cfg = clf.config();
  MOH_CHECK(cfg.num_classes > 0, "model '", cfg.name, "' has no classification head (num_classes 0)");
  for (const auto& s : ds.samples)
    MOH_CHECK(s.label >= 0 && s.label < cfg.num_classes, "sample '", s.path, "' has label ", s.label,
              " outside the model's ", cfg.num_classes, " classes");

  const auto n = (int64_t)ds.samples.size();
  const int64_t num_batches = (n + o.batch_size - 1) / o.batch_size;
  const bool pin = clf.device().is_cuda();
  EvalResult r;
  r.topk = (int)std::min<int64_t>(o.topk, cfg.num_classes);
  r.per_class.assign(cfg.num_classes, {});
  r.predictions.assign(n, -1);
  const auto t0 = std::chrono::steady_clock::now();

  BatchQueue queue(2 * (size_t)o.workers);
  std::atomic<int64_t> next{0};
  auto worker = [&]() {
    use_one_cpu_thread_here();  // decoding must not take cores from the model's thread team
    for (int64_t b; (b = next.fetch_add(1)) < num_batches;) {
      Batch batch;
      try {
        std::vector<torch::Tensor> inputs;
        const int64_t first = b * o.batch_size, last = std::min(n, (b + 1) * o.batch_size);
        if (ds.images_u8.defined()) {  // in-memory 28x28 pictures: one tensor op per batch
          batch.input = clf.preprocess_gray28(ds.images_u8.narrow(0, first, last - first));
          for (int64_t i = first; i < last; ++i) batch.samples.push_back(i);
          queue.push(std::move(batch));
          continue;
        }
        for (int64_t i = first; i < last; ++i) {
          try {
            inputs.push_back(clf.preprocess(decode_image_file(ds.samples[i].path)));
            batch.samples.push_back(i);
          } catch (const std::exception& e) {
            batch.failures.push_back({ds.samples[i].path, e.what()});
            batch.failed_samples.push_back(i);
          }
        }
        if (!inputs.empty()) {
          batch.input = torch::stack(inputs);  // [b, 3, S, S]
          if (pin) batch.input = batch.input.pin_memory();
        }
      } catch (...) {
        batch.error = std::current_exception();
      }
      queue.push(std::move(batch));
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < std::min<int64_t>(o.workers, std::max<int64_t>(num_batches, 1)); ++w) threads.emplace_back(worker);
  auto join_all = [&]() {
    queue.close();
    next.store(num_batches);
    for (auto& t : threads)
      if (t.joinable()) t.join();
  };

  Progress progress("eval", n, "img", o.progress);
  try {
    for (int64_t done = 0; done < num_batches; ++done) {
      Batch batch = queue.pop();
      if (batch.error) std::rethrow_exception(batch.error);
      for (size_t j = 0; j < batch.failures.size(); ++j) r.failures.push_back(batch.failures[j]);
      r.failed += (int64_t)batch.failures.size();
      if (batch.input.defined()) {
        const auto m0 = std::chrono::steady_clock::now();
        auto logits = clf.logits(batch.input);  // [b, classes] float32 CPU
        r.model_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - m0).count();
        auto top = std::get<1>(torch::topk(logits, r.topk, -1));  // [b, k]
        auto acc = top.accessor<int64_t, 2>();
        for (size_t j = 0; j < batch.samples.size(); ++j) {
          const auto i = batch.samples[j];
          const auto label = ds.samples[i].label;
          bool in_topk = false;
          for (int kk = 0; kk < r.topk; ++kk) in_topk = in_topk || acc[j][kk] == label;
          const bool top1 = acc[j][0] == label;
          r.predictions[i] = acc[j][0];
          auto& cs = r.per_class[label];
          cs.images++;
          cs.top1 += top1;
          cs.topk += in_topk;
          r.top1_correct += top1;
          r.topk_correct += in_topk;
          r.images++;
        }
      }
      progress.advance((int64_t)(batch.samples.size() + batch.failures.size()));
      if (o.on_progress) o.on_progress((int64_t)(batch.samples.size() + batch.failures.size()));
      char suffix[64];
      std::snprintf(suffix, sizeof suffix, "top1 %.2f%%", r.top1());
      progress.set_suffix(suffix);
    }
  } catch (...) {
    join_all();
    throw;
  }
  join_all();
  progress.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::sort(r.failures.begin(), r.failures.end(), [](auto& a, auto& b) { return a.path < b.path; });
  MOH_CHECK(!o.require_readable || n == 0 || r.images > 0, "none of the ", n, " images of '", ds.root,
            "' could be read (first error: ",
            r.failures.empty() ? std::string("?") : r.failures.front().path + ": " + r.failures.front().error,
            "); check the dataset folder and its format");
  return r;
}

// ---------------------------------------------------------------------------------------------- reporting
namespace {
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}
}  // namespace

void write_per_class_csv(const std::string& path, const EvalResult& r, Classifier& clf) {
  std::ostringstream os;
  os << "class_index,class_id,class_name,images,top1_correct,top" << r.topk << "_correct,top1_acc,top" << r.topk
     << "_acc\n";
  const bool imagenet = clf.config().num_classes == 1000 && clf.config().class_names.empty();
  for (size_t c = 0; c < r.per_class.size(); ++c) {
    const auto& s = r.per_class[c];
    if (s.images == 0) continue;
    char acc[64];
    std::snprintf(acc, sizeof acc, "%.4f,%.4f", 100.0 * s.top1 / s.images, 100.0 * s.topk / s.images);
    os << c << "," << (imagenet ? imagenet_classes()[c].wnid : std::to_string(c)) << ","
       << csv_field(clf.label((int64_t)c)) << "," << s.images << "," << s.top1 << "," << s.topk << "," << acc << "\n";
  }
  write_file_atomic(path, os.str());
}

}  // namespace moh::vit
