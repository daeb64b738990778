// [layouts] ImageNet validation as people store it (vit/imagenet_layouts.h, vit/webdataset.h, vit/tar_stream.h,
// vit/real_labels.h, vit/eval_transform.h, vit/results_file.h): the devkit ID table's spot checks; miniature
// ImageNet-style datasets written here (tiny JPEGs, known labels) in each layout, read by moh-eval, whose
// --predictions label column must be the intended standard class index of every image, in one and in two processes;
// tar shards with a truncated member; label files that miss an image or name an unknown class; ReaL accuracy,
// timm's transform options and the results file.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>

#include "common/dist/distributed.h"
#include "parity/golden.h"
#include "common/datasets/imagenet.h"
#include "common/weights/safetensors.h"
#include "common/weights/state_dict.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"
#include "vit/evaluate_dist.h"
#include "vit/imagenet_layouts.h"
#include "vit/model.h"
#include "vit/real_labels.h"
#include "vit/results_file.h"
#include "vit/tar_stream.h"
#include "vit/webdataset.h"

namespace fs = std::filesystem;
using moh::test::contains;
using moh::test::error_message;

namespace {

std::string slurp(const std::string& path) { return moh::test::read_file(path); }

void write(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// A small noisy RGB picture as JPEG bytes (stb's encoder, quality 90).
std::string jpeg_bytes(int w, int h, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> rgb(size_t(w) * h * 3);
  for (auto& p : rgb) p = uint8_t(rng() & 255);
  std::string out;
  auto sink = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append((char*)data, size); };
  REQUIRE(stbi_write_jpg_to_func(sink, &out, w, h, 3, rgb.data(), 90) != 0);
  return out;
}

// Our own minimal tar writer for the fixtures: ustar headers, a pax 'x' record for names over 100 bytes.
class TarWriter {
 public:
  void add(const std::string& name, const std::string& data) {
    if (name.size() > 100) {
      std::string rec = " path=" + name + "\n";
      size_t len = rec.size();
      while (std::to_string(len).size() + rec.size() != len) len = std::to_string(len).size() + rec.size();
      header("PaxHeader", std::to_string(len) + rec, 'x');
    }
    header(name.substr(0, 100), data, '0');
  }
  std::string finish() { return out_ + std::string(1024, '\0'); }

 private:
  void header(const std::string& name, const std::string& data, char type) {
    char h[512] = {};
    std::memcpy(h, name.data(), name.size());
    std::snprintf(h + 100, 8, "%07o", 0644);
    std::snprintf(h + 108, 8, "%07o", 0);
    std::snprintf(h + 116, 8, "%07o", 0);
    std::snprintf(h + 124, 12, "%011llo", (unsigned long long)data.size());
    std::snprintf(h + 136, 12, "%011o", 0);
    h[156] = type;
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    out_.append(h, 512);
    out_ += data;
    out_.append((512 - data.size() % 512) % 512, '\0');
  }
  std::string out_;
};

std::string val_name(int k) {  // ILSVRC2012_val_00000042
  char b[32];
  std::snprintf(b, sizeof b, "ILSVRC2012_val_%08d", k);
  return b;
}

// The devkit ID of a standard class index (inverse of the embedded table).
int devkit_id_of(int64_t cls) {
  const auto& w = moh::vit::imagenet_devkit_wnids();
  const auto it = std::find(w.begin(), w.end(), moh::imagenet_classes()[size_t(cls)].wnid);
  REQUIRE(it != w.end());
  return int(it - w.begin()) + 1;
}

// A 1000-class MoH-ViT (the golden tiny config with an ImageNet head, seeded random weights) and 12 tiny JPEG
// validation images with chosen standard class indices.
struct Mini {
  std::string dir, model_json, weights;
  moh::vit::ViTConfig cfg;
  std::vector<std::string> jpegs;    // image k+1's bytes
  std::vector<int64_t> classes;      // image k+1's intended standard class index
};

Mini make_mini() {
  Mini m;
  m.dir = moh::test::temp_dir("layouts");
  moh::GoldenFile g(moh::test::data_glob("golden/vit_model*.safetensors").front());
  m.cfg = moh::vit::vit_config_from_json(g.config().at("model"));
  m.cfg.num_classes = 1000;
  m.cfg.class_names.clear();
  torch::manual_seed(25);
  moh::vit::TransNeXt model(m.cfg);
  m.weights = m.dir + "/tiny1000.safetensors";
  moh::write_safetensors(m.weights, moh::state_dict(*model));
  m.model_json = m.dir + "/tiny1000.json";
  moh::vit::save_vit_config(m.cfg, m.model_json);
  std::mt19937 rng(2025);
  for (int k = 0; k < 12; ++k) {
    // Image 1 is a kit fox (devkit ID 1), the others random classes, one class twice.
    const int64_t cls = k == 0 ? moh::resolve_imagenet_class("kit fox") : k == 5 ? m.classes[3] : int64_t(rng() % 1000);
    m.classes.push_back(cls);
    m.jpegs.push_back(jpeg_bytes(40 + 3 * k, 30 + 2 * (k % 4), 100 + k));
  }
  return m;
}

std::string eval_cmd(const Mini& m, const std::string& args) {
  return moh::test::bin_path("moh-eval") + " --model " + m.model_json + " --weights " + m.weights +
         " --device cpu --threads 1 --batch-size 4 --workers 2 -q " + args;
}

struct PredRow {
  std::string path;
  int64_t label = -1, predicted = -1;
};

// moh-eval --predictions: path,label,label_name,predicted,predicted_name,correct,error (names hold no commas here).
std::vector<PredRow> read_predictions(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  REQUIRE(line.rfind("path,label,", 0) == 0);
  std::vector<PredRow> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, ',')) f.push_back(x);
    REQUIRE(f.size() >= 4);
    rows.push_back({f[0], std::stoll(f[1]), std::stoll(f[3])});
  }
  return rows;
}

// Every row's label must be the intended class of its image (found by the image's number in its name).
void check_labels(const Mini& m, const std::vector<PredRow>& rows, size_t expected_rows) {
  REQUIRE(rows.size() == expected_rows);
  std::set<int64_t> seen;
  for (const auto& r : rows) {
    INFO(r.path);
    const int64_t k = moh::vit::imagenet_val_number(r.path);
    REQUIRE(k >= 1);
    REQUIRE(k <= (int64_t)m.classes.size());
    CHECK(r.label == m.classes[size_t(k - 1)]);
    CHECK(r.predicted >= 0);
    CHECK(seen.insert(k).second);
  }
}

std::string run_ok(const std::string& cmd, int want_rc = 0) {
  std::string out;
  const int rc = moh::test::run_command(cmd + " 2>&1", &out);
  INFO(cmd << "\n" << out);
  REQUIRE(rc == want_rc);
  return out;
}

// --- datasets in each layout ---------------------------------------------------------------------------------

std::string make_imagefolder(const Mini& m) {
  const auto root = m.dir + "/imagefolder";
  for (size_t k = 0; k < m.jpegs.size(); ++k)
    write(root + "/val/" + moh::imagenet_classes()[size_t(m.classes[k])].wnid + "/" + val_name(int(k) + 1) + ".JPEG",
          m.jpegs[k]);
  return root;
}

// Kaggle: <root>/LOC_val_solution.csv + <root>/ILSVRC/Data/CLS-LOC/val/*.JPEG; rows shuffled, with boxes.
std::string make_kaggle(const Mini& m) {
  const auto root = m.dir + "/kaggle";
  const auto val = root + "/ILSVRC/Data/CLS-LOC/val";
  std::vector<std::string> rows;
  for (size_t k = 0; k < m.jpegs.size(); ++k) {
    write(val + "/" + val_name(int(k) + 1) + ".JPEG", m.jpegs[k]);
    const auto& wnid = moh::imagenet_classes()[size_t(m.classes[k])].wnid;
    rows.push_back(val_name(int(k) + 1) + "," + wnid + " 1 2 30 20 " + wnid + " 3 4 10 12 ");
  }
  std::shuffle(rows.begin(), rows.end(), std::mt19937(3));
  std::string csv = "ImageId,PredictionString\n";
  for (const auto& r : rows) csv += r + "\n";
  write(root + "/LOC_val_solution.csv", csv);
  return val;
}

// Devkit: <root>/val/*.JPEG + <root>/ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt.
std::string make_devkit(const Mini& m) {
  const auto root = m.dir + "/devkit";
  std::string gt;
  for (size_t k = 0; k < m.jpegs.size(); ++k) {
    write(root + "/val/" + val_name(int(k) + 1) + ".JPEG", m.jpegs[k]);
    gt += std::to_string(devkit_id_of(m.classes[k])) + "\n";
  }
  write(root + "/ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", gt);
  return root + "/val";
}

// WebDataset: `shards` shards, samples dealt in order; .cls labels, except .json {"label": ...} in the last shard.
std::string make_webdataset(const Mini& m, int shards, const std::string& sub) {
  const auto root = m.dir + "/" + sub;
  const size_t per = (m.jpegs.size() + shards - 1) / shards;
  for (int s = 0; s < shards; ++s) {
    TarWriter t;
    for (size_t k = s * per; k < std::min(m.jpegs.size(), (s + 1) * per); ++k) {
      const std::string key = val_name(int(k) + 1);
      if (s == shards - 1 && shards > 1) {
        t.add(key + ".json", "{\"label\": " + std::to_string(m.classes[k]) + ", \"filename\": \"x.JPEG\"}");
      } else {
        t.add(key + ".cls", std::to_string(m.classes[k]) + "\n");
      }
      t.add(key + ".jpg", m.jpegs[k]);
    }
    char name[64];
    std::snprintf(name, sizeof name, "/imagenet1k-validation-%06d.tar", s);
    write(root + name, t.finish());
  }
  return root;
}

}  // namespace

// ------------------------------------------------------------------------------------------------------ tests

TEST_CASE("devkit ILSVRC2012_ID table: spot checks, a permutation of the 1000 classes, equal to its data file",
          "[layouts]") {
  const auto& w = moh::vit::imagenet_devkit_wnids();
  REQUIRE(w.size() == 1000);
  // The devkit's own documentation of meta.mat: ID 1 kit fox, ID 2 English setter, ID 1000 dumbbell.
  CHECK(w[0] == "n02119789");
  CHECK(moh::vit::devkit_id_to_class_index(1) == moh::resolve_imagenet_class("kit fox"));
  CHECK(moh::vit::devkit_id_to_class_index(1) == 278);
  CHECK(w[1] == "n02100735");
  CHECK(moh::vit::devkit_id_to_class_index(2) == moh::resolve_imagenet_class("English setter"));
  CHECK(w[999] == "n03255030");
  CHECK(moh::vit::devkit_id_to_class_index(1000) == moh::resolve_imagenet_class("dumbbell"));
  CHECK(moh::vit::devkit_id_to_class_index(1000) == 543);
  std::set<int> classes;
  for (int id = 1; id <= 1000; ++id) classes.insert(moh::vit::devkit_id_to_class_index(id));
  CHECK(classes.size() == 1000);
  CHECK(*classes.begin() == 0);
  CHECK(*classes.rbegin() == 999);
  CHECK_THROWS_AS(moh::vit::devkit_id_to_class_index(0), moh::Error);
  CHECK_THROWS_AS(moh::vit::devkit_id_to_class_index(1001), moh::Error);

  std::ifstream in(std::string(MOH_DATA_DIR) + "/imagenet_devkit_ids.tsv");
  if (!MOH_NEED(in.good(), std::string(MOH_DATA_DIR) + "/imagenet_devkit_ids.tsv not found")) return;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    INFO(line);
    REQUIRE(n < w.size());
    CHECK(line == std::to_string(n + 1) + "\t" + w[n]);
    ++n;
  }
  CHECK(n == 1000);
}

TEST_CASE("tar reader: ustar and pax names, sizes, offsets; truncation is reported", "[layouts]") {
  const auto dir = moh::test::temp_dir("tar");
  TarWriter t;
  const std::string long_name = std::string(120, 'd') + "/ILSVRC2012_val_00000001.jpg";
  t.add("a.cls", "7\n");
  t.add(long_name, std::string(700, 'x'));
  t.add("b.txt", "");
  const auto bytes = t.finish();
  write(dir + "/s.tar", bytes);
  moh::vit::TarReader r(dir + "/s.tar");
  moh::vit::TarMember m;
  std::vector<moh::vit::TarMember> ms;
  while (r.next(m)) ms.push_back(m);
  REQUIRE(ms.size() == 3);
  CHECK(ms[0].name == "a.cls");
  CHECK(ms[0].size == 2);
  CHECK(ms[1].name == long_name);
  CHECK(ms[1].size == 700);
  CHECK(bytes.substr(size_t(ms[1].data_offset), 700) == std::string(700, 'x'));
  CHECK(ms[2].name == "b.txt");
  CHECK(ms[2].size == 0);
  CHECK(r.truncation().empty());

  // Cut inside the long member's data: it comes back truncated, and the listing ends there.
  write(dir + "/cut.tar", bytes.substr(0, size_t(ms[1].data_offset) + 300));
  moh::vit::TarReader c(dir + "/cut.tar");
  REQUIRE(c.next(m));
  REQUIRE(c.next(m));
  CHECK(m.truncated());
  CHECK(m.available == 300);
  CHECK_FALSE(c.next(m));
  CHECK(contains(c.truncation(), "700"));
  // A damaged header (bad checksum) is an error naming the shard and byte offset.
  std::string bad = bytes;
  bad[0] = 'Z';
  write(dir + "/bad.tar", bad);
  moh::vit::TarReader b(dir + "/bad.tar");
  const auto msg = error_message([&] { b.next(m); });
  CHECK(contains(msg, "bad.tar"));
  CHECK(contains(msg, "checksum"));
}

TEST_CASE("layouts: detection and the label of every image (ImageFolder, Kaggle CSV, devkit, WebDataset)",
          "[layouts]") {
  const auto m = make_mini();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"imagefolder", make_imagefolder(m)},
      {"kaggle-csv", make_kaggle(m)},
      {"devkit", make_devkit(m)},
      {"webdataset", make_webdataset(m, 3, "wds3") + "/imagenet1k-validation-{000000..000002}.tar"},
  };
  for (const auto& [layout, data] : cases) {
    INFO(layout);
    const auto ds = moh::vit::list_eval_dataset(data, "", m.cfg);
    CHECK(ds.layout == layout);
    const auto pred = m.dir + "/pred-" + layout + ".csv";
    const auto json = m.dir + "/sum-" + layout + ".json";
    run_ok(eval_cmd(m, "--data '" + data + "' --predictions " + pred + " --json " + json));
    check_labels(m, read_predictions(pred), m.jpegs.size());
    const auto j = moh::test::read_json(json);
    CHECK(j.at("layout") == layout);
    CHECK(j.at("images") == (int64_t)m.jpegs.size());
  }
  // The same images give the same predictions whatever the layout.
  const auto a = read_predictions(m.dir + "/pred-imagefolder.csv"), b = read_predictions(m.dir + "/pred-webdataset.csv");
  std::map<int64_t, int64_t> pa, pb;
  for (const auto& r : a) pa[moh::vit::imagenet_val_number(r.path)] = r.predicted;
  for (const auto& r : b) pb[moh::vit::imagenet_val_number(r.path)] = r.predicted;
  CHECK(pa == pb);

  // --layout forces a reading; a label file given explicitly is recognised by its content.
  const auto kaggle_csv = m.dir + "/kaggle/LOC_val_solution.csv";
  CHECK(moh::vit::list_eval_dataset(m.dir + "/devkit/val", kaggle_csv, m.cfg).layout == "kaggle-csv");
  CHECK(moh::vit::list_eval_dataset(m.dir + "/devkit/val", "", m.cfg, "test", "devkit").layout == "devkit");
  const auto forced = error_message([&] { moh::vit::list_eval_dataset(m.dir + "/devkit/val", "", m.cfg, "test", "kaggle-csv"); });
  CHECK(contains(forced, "LOC_val_solution.csv"));
}

TEST_CASE("label files that miss an image or name an unknown class: errors name the file and line", "[layouts]") {
  const auto m = make_mini();
  const auto val = make_kaggle(m);
  const auto dir = m.dir + "/bad";
  // A CSV without the row of image 5.
  std::ifstream in(m.dir + "/kaggle/LOC_val_solution.csv");
  std::string csv, line;
  int lineno = 0, unknown_line = 0;
  std::string bad_csv;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.rfind(val_name(5), 0) != 0) csv += line + "\n";
    if (lineno == 4) {
      bad_csv += val_name(99) + ",n99999999 1 2 3 4\n";
      unknown_line = lineno;
    } else {
      bad_csv += line + "\n";
    }
  }
  write(dir + "/missing.csv", csv);
  auto msg = error_message([&] { moh::vit::list_eval_dataset(val, dir + "/missing.csv", m.cfg); });
  CHECK(contains(msg, val_name(5) + ".JPEG"));
  CHECK(contains(msg, "missing.csv"));
  write(dir + "/unknown.csv", bad_csv);
  msg = error_message([&] { moh::vit::list_eval_dataset(val, dir + "/unknown.csv", m.cfg); });
  CHECK(contains(msg, "unknown.csv' line " + std::to_string(unknown_line)));
  CHECK(contains(msg, "n99999999"));
  // Devkit ground truth: an ID outside 1..1000, and a file shorter than the folder.
  write(dir + "/gt.txt", "1\n2\n1001\n");
  msg = error_message([&] { moh::vit::list_eval_dataset(val, dir + "/gt.txt", m.cfg); });
  CHECK(contains(msg, "gt.txt' line 3"));
  write(dir + "/gt_short.txt", "1\n2\n3\n");
  msg = error_message([&] { moh::vit::list_eval_dataset(val, dir + "/gt_short.txt", m.cfg); });
  CHECK(contains(msg, val_name(4)));
  CHECK(contains(msg, "gt_short.txt"));
  // Through the app: exit 1 and the message.
  const auto out = run_ok(eval_cmd(m, "--data " + val + " --labels " + dir + "/missing.csv"), 1);
  CHECK(contains(out, val_name(5)));
}

TEST_CASE("WebDataset: a truncated member is a reported unreadable sample naming the shard", "[layouts]") {
  const auto m = make_mini();
  const auto root = make_webdataset(m, 1, "wds-cut");
  const auto shard = root + "/imagenet1k-validation-000000.tar";
  const auto bytes = slurp(shard);
  // Find image 7's member and cut the shard inside its data.
  moh::vit::TarReader r(shard);
  moh::vit::TarMember mem;
  int64_t cut = -1;
  while (r.next(mem))
    if (mem.name == val_name(7) + ".jpg") cut = mem.data_offset + mem.size / 2;
  REQUIRE(cut > 0);
  write(m.dir + "/wds-cut-copy.tar", bytes);
  write(shard, bytes.substr(0, size_t(cut)));
  const auto ds = moh::vit::list_eval_dataset(root, "", m.cfg);
  REQUIRE(ds.samples.size() == 7);  // 6 whole samples + the cut one (what followed it is gone)
  CHECK(ds.samples[6].error.find("truncated") != std::string::npos);
  CHECK(ds.samples[6].error.find(val_name(7) + ".jpg") != std::string::npos);
  CHECK(ds.samples[6].error.find("imagenet1k-validation-000000.tar") != std::string::npos);
  const auto out = run_ok(eval_cmd(m, "--data " + root + " --predictions " + m.dir + "/cut.csv --json " + m.dir +
                                          "/cut.json"), 3);
  CHECK(contains(out, "truncated"));
  CHECK(contains(out, val_name(7)));
  const auto j = moh::test::read_json(m.dir + "/cut.json");
  CHECK(j.at("images") == 6);
  CHECK(j.at("unreadable") == 1);
  // A cut inside a header (between samples) is reported too.
  int64_t header2 = -1;
  moh::vit::TarReader whole(m.dir + "/wds-cut-copy.tar");
  while (whole.next(mem))
    if (mem.name == val_name(2) + ".cls") header2 = mem.header_offset;
  REQUIRE(header2 > 0);
  write(shard, bytes.substr(0, size_t(header2) + 100));
  const auto ds2 = moh::vit::list_eval_dataset(root, "", m.cfg);
  REQUIRE(ds2.samples.size() == 2);  // sample 1, then the report of the cut
  CHECK(ds2.samples[0].error.empty());
  CHECK(ds2.samples[1].error.find("truncated") != std::string::npos);
  // A shard sample without a label is an error naming the shard and the sample.
  TarWriter t;
  t.add(val_name(1) + ".jpg", m.jpegs[0]);
  write(m.dir + "/nolabel/x.tar", t.finish());
  const auto msg = error_message([&] { moh::vit::list_eval_dataset(m.dir + "/nolabel", "", m.cfg); });
  CHECK(contains(msg, "x.tar"));
  CHECK(contains(msg, val_name(1)));
  CHECK(contains(msg, "label"));
}

TEST_CASE("rank_samples: by shard, then by sample; every sample exactly once", "[layouts]") {
  for (int64_t S : {1, 2, 3, 5}) {
    moh::vit::EvalDataset ds;
    ds.num_shards = S;
    for (int64_t i = 0; i < 23; ++i) {
      moh::vit::EvalSample s;
      s.shard = int32_t(i * S / 23);
      ds.samples.push_back(s);
    }
    for (int W : {1, 2, 3, 4}) {
      INFO("shards " << S << " ranks " << W);
      std::vector<int> owner(23, -1);
      for (int r = 0; r < W; ++r)
        for (auto i : moh::vit::rank_samples(ds, r, W)) {
          CHECK(owner[size_t(i)] == -1);
          owner[size_t(i)] = r;
          if (S >= W) CHECK(ds.samples[size_t(i)].shard % W == r);  // whole shards per rank
        }
      CHECK(std::count(owner.begin(), owner.end(), -1) == 0);
    }
  }
}


TEST_CASE("two processes (torchrun) give the one-process predictions: WebDataset by shard and by sample, Kaggle",
          "[layouts]") {
  if (!MOH_NEED(moh::dist::multi_process_supported(), "a build with Gloo (libgloo-dev)")) return;
  if (!MOH_NEED(moh::test::torchrun_available(), "torchrun (python3-torch; scripts/torchrun.sh --check)"))
    return;
  const auto m = make_mini();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"wds3", make_webdataset(m, 3, "wds3")},  // 3 shards over 2 ranks: split by shard
      {"wds1", make_webdataset(m, 1, "wds1")},  // 1 shard over 2 ranks: split by sample
      {"kaggle", make_kaggle(m)},
  };
  for (const auto& [name, data] : cases) {
    INFO(name);
    const auto one = m.dir + "/one-" + name + ".csv", two = m.dir + "/two-" + name + ".csv";
    run_ok(eval_cmd(m, "--data " + data + " --predictions " + one + " --json " + m.dir + "/one-" + name + ".json"));
    run_ok(moh::test::torchrun_prefix(2) + eval_cmd(m, "--data " + data + " --predictions " + two + " --json " + m.dir + "/two-" + name + ".json"));
    check_labels(m, read_predictions(two), m.jpegs.size());
    CHECK(slurp(one) == slurp(two));
    const auto j1 = moh::test::read_json(m.dir + "/one-" + name + ".json");
    const auto j2 = moh::test::read_json(m.dir + "/two-" + name + ".json");
    CHECK(j2.at("ranks") == 2);
    for (const char* k : {"images", "top1_correct", "top5_correct", "per_class"}) CHECK(j1.at(k) == j2.at(k));
  }
}

TEST_CASE("ReaL top-1 beside top-1; timm transform options; results file rows", "[layouts]") {
  const auto m = make_mini();
  const auto data = make_imagefolder(m);
  run_ok(eval_cmd(m, "--data " + data + " --predictions " + m.dir + "/p.csv"));
  const auto rows = read_predictions(m.dir + "/p.csv");
  // real.json: images 1-4 no ReaL label (left out), 5-8 a list holding the prediction, 9-12 a list without it.
  nlohmann::json real = nlohmann::json::array();
  std::map<int64_t, int64_t> pred;
  for (const auto& r : rows) pred[moh::vit::imagenet_val_number(r.path)] = r.predicted;
  for (int64_t k = 1; k <= 12; ++k) {
    if (k <= 4) real.push_back(nlohmann::json::array());
    else if (k <= 8) real.push_back({(pred[k] + 1) % 1000, pred[k]});
    else real.push_back({(pred[k] + 1) % 1000});
  }
  real.push_back({1, 2});  // an entry for an image not in the folder: unused
  write(m.dir + "/real.json", real.dump());
  const auto out = run_ok(eval_cmd(m, "--data " + data + " --real-labels " + m.dir + "/real.json --json " + m.dir +
                                          "/r.json --results-file " + m.dir + "/results.csv"));
  CHECK(contains(out, "ReaL top1 50.000%"));
  auto j = moh::test::read_json(m.dir + "/r.json");
  CHECK(j.at("real_images") == 8);
  CHECK(j.at("real_top1_correct") == 4);
  CHECK(j.at("real_top1").get<double>() == Approx(50.0));
  CHECK(j.at("transform").at("interpolation") == "bicubic");
  CHECK(j.at("transform").at("origin").get<std::string>().find("official") != std::string::npos);

  // timm options: recorded in the JSON, and they change the input (hence, here, at least the JSON).
  run_ok(eval_cmd(m, "--data " + data + " --crop-pct 1.0 --interpolation bilinear --img-size 64 --mean 0.5 0.5 0.5 "
                     "--std 0.5 0.5 0.5 --json " + m.dir + "/t.json --results-file " + m.dir + "/results.csv"));
  j = moh::test::read_json(m.dir + "/t.json");
  CHECK(j.at("transform").at("crop_pct") == 1.0);
  CHECK(j.at("transform").at("resize") == "shorter side to 64");
  CHECK(j.at("transform").at("interpolation") == "bilinear");
  CHECK(j.at("transform").at("mean") == nlohmann::json({0.5, 0.5, 0.5}));
  run_ok(eval_cmd(m, "--data " + data + " --crop-pct 1.5"), 1);
  // ReaL labels find images by their validation number: other names are refused.
  write(m.dir + "/other/n01440764/cat.JPEG", m.jpegs[0]);
  const auto bad = run_ok(eval_cmd(m, "--data " + m.dir + "/other --real-labels " + m.dir + "/real.json"), 1);
  CHECK(contains(bad, "ILSVRC2012_val_"));

  // results.csv: a header and one row per run.
  std::ifstream in(m.dir + "/results.csv");
  std::string header, row1, row2, extra;
  std::getline(in, header);
  std::getline(in, row1);
  std::getline(in, row2);
  CHECK_FALSE(std::getline(in, extra));
  CHECK(header.rfind("model,weights,weights_sha256,top1,top5,real_top1,images", 0) == 0);
  CHECK(contains(header, "git_revision"));
  std::vector<std::string> f;
  std::stringstream ss(row1);
  for (std::string x; f.size() < 6 && std::getline(ss, x, ',');) f.push_back(x);
  REQUIRE(f.size() == 6);
  CHECK(std::stod(f[5]) == Approx(50.0));  // real_top1
  CHECK(contains(row2, "bilinear"));
  CHECK(contains(row1, "bicubic"));
  // JSON results: a list growing by one object per run.
  moh::vit::append_results_row(m.dir + "/res.json", nlohmann::ordered_json{{"model", "a"}, {"top1", 1.5}});
  moh::vit::append_results_row(m.dir + "/res.json", nlohmann::ordered_json{{"model", "b"}, {"top1", 2.5}});
  const auto rj = moh::test::read_json(m.dir + "/res.json");
  REQUIRE(rj.size() == 2);
  CHECK(rj[1].at("model") == "b");
  CHECK_THROWS_AS(moh::vit::append_results_row(m.dir + "/results.csv", nlohmann::ordered_json{{"other", 1}}),
                  moh::Error);
}
