// FID-mode sampling over the ranks of a job (see fid_sampling.h); mirrors MoH-DiT/sample_ddp.py (sharding,
// per-image PNGs, barrier, create_npz_from_sample_folder on rank 0).
#include "dit/fid_sampling.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/io/atomic_file.h"
#include "common/dist/progress.h"
#include "common/error.h"
#include "common/io/json_file.h"
#include "common/image/image_io.h"
#include "common/runtime/seed_mix.h"
#include "common/runtime/threads.h"
#include "dit/generation_output.h"

namespace moh::dit {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSidecar = "generation.json";

bool is_temp_file(const std::string& name) { return name.find(".tmp.") != std::string::npos; }

// Checks that `dir` is new, empty, or holds this very run; returns the earlier run's sidecar when it is resumed,
// null otherwise. Read-only.
nlohmann::json check_out_dir(const std::string& dir, const nlohmann::json& run) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return nullptr;
  MOH_CHECK(fs::is_directory(dir, ec), "output folder '", dir, "' exists and is not a folder");
  const auto sidecar = fs::path(dir) / kSidecar;
  if (!fs::exists(sidecar, ec)) {
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      MOH_CHECK(is_temp_file(it->path().filename().string()), "output folder '", dir, "' already holds files but no ", kSidecar,
                " of an FID run; choose a new folder");
    return nullptr;
  }
  const nlohmann::json prev = read_json_file(sidecar.string(), "the sidecar of an earlier FID run");
  MOH_CHECK(prev.contains("run"), "output folder '", dir,
            "' holds the output of a non-FID moh-generate run; choose a new "
            "folder");
  if (prev["run"] != run) {
    std::string diff;
    for (auto& [k, v] : run.items())
      if (!prev["run"].contains(k) || prev["run"][k] != v) diff += (diff.empty() ? "" : ", ") + k;
    for (auto& [k, v] : prev["run"].items())
      if (!run.contains(k)) diff += (diff.empty() ? "" : ", ") + k;
    throw Error("output folder '" + dir + "' holds samples of another run (different " + diff +
                "); resume with the same "
                "settings or choose a new folder");
  }
  return prev;
}

void remove_stale_temp_files(const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_temp_file(it->path().filename().string())) fs::remove(it->path(), ec);
}

void write_png_atomic(const std::string& path, const torch::Tensor& hwc_u8) {
  const auto bytes = encode_png_memory(image_from_hwc_tensor(hwc_u8));
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

// Packs dir/NNNNNN.png, n of them, into dir/samples.npz, decoding a chunk at a time with a few threads.
void pack_npz(const std::string& dir, int64_t n) {
  const auto first = decode_image_file((fs::path(dir) / fid_png_name(0)).string());
  const int64_t H = first.height, W = first.width;
  const int threads = std::max(1, std::min(8, available_cores()));
  const int64_t chunk = 64 * threads;
  std::vector<ImageU8> buf;
  int64_t buf_first = -1;
  auto load_chunk = [&](int64_t start) {
    const int64_t m = std::min(chunk, n - start);
    buf.assign(size_t(m), ImageU8{});
    std::vector<std::string> errors(static_cast<size_t>(threads));
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        try {
          for (int64_t k = t; k < m; k += threads)
            buf[size_t(k)] = decode_image_file((fs::path(dir) / fid_png_name(start + k)).string());
        } catch (const std::exception& e) {
          errors[size_t(t)] = e.what();
        }
      });
    for (auto& th : pool) th.join();
    for (const auto& e : errors) MOH_CHECK(e.empty(), "packing samples.npz: ", e);
    buf_first = start;
  };
  write_npz_u8_streamed((fs::path(dir) / "samples.npz").string(), "arr_0", {n, H, W, 3}, [&](int64_t i) {
    if (buf_first < 0 || i >= buf_first + (int64_t)buf.size()) load_chunk(i);
    const auto& img = buf[size_t(i - buf_first)];
    MOH_CHECK(img.width == W && img.height == H, "sample ", fid_png_name(i), " is ", img.width, "x", img.height,
              ", the others ", W, "x", H);
    return torch::from_blob(const_cast<uint8_t*>(img.rgb.data()), {H, W, 3}, torch::kUInt8);
  });
}

}  // namespace

std::vector<int64_t> fid_labels(uint64_t seed, int64_t n, const std::vector<int64_t>& classes) {
  MOH_CHECK(!classes.empty(), "internal error: fid_labels needs at least one class");
  std::vector<int64_t> out(size_t(std::max<int64_t>(n, 0)));
  const uint64_t base = splitmix64(seed ^ 0x6C6162656C73ull);  // "labels": a stream apart from the noise seeds
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = classes[splitmix64(base + uint64_t(i)) % classes.size()];
  return out;
}

std::string fid_png_name(int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06lld.png", static_cast<long long>(index));
  return buf;
}

std::vector<std::pair<int64_t, int64_t>> fid_chunks_to_generate(const std::vector<int64_t>& missing, int64_t n,
                                                                int64_t chunk_size) {
  MOH_CHECK(chunk_size >= 1, "internal error: chunk size ", chunk_size);
  std::vector<std::pair<int64_t, int64_t>> out;
  for (auto i : missing) {
    MOH_CHECK(i >= 0 && i < n, "internal error: sample index ", i, " outside [0, ", n, ")");
    const int64_t first = i / chunk_size * chunk_size;
    if (out.empty() || out.back().first != first) out.emplace_back(first, std::min(first + chunk_size, n));
  }
  return out;
}

std::vector<int64_t> missing_fid_samples(const std::string& dir, int64_t n) {
  std::vector<char> present(size_t(std::max<int64_t>(n, 0)), 0);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name.size() < 10 || name.compare(name.size() - 4, 4, ".png") != 0) continue;
    const auto digits = name.substr(0, name.size() - 4);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) || digits.size() > 15)
      continue;
    const int64_t idx = std::stoll(digits);
    std::error_code ec2;
    if (idx < n && fid_png_name(idx) == name && it->is_regular_file(ec2) && it->file_size(ec2) > 0)
      present[size_t(idx)] = 1;
  }
  std::vector<int64_t> missing;
  for (int64_t i = 0; i < n; ++i)
    if (!present[size_t(i)]) missing.push_back(i);
  return missing;
}

FidResult generate_fid_samples(DiT& model, Vae* vae, GenerateParams p, const torch::Device& device, const FidOptions& o,
                               dist::Group& g) {
  MOH_CHECK(o.num_samples >= 1, "num_samples must be at least 1, got ", o.num_samples);
  MOH_CHECK(!o.out_dir.empty(), "no output folder given (the folder to write the samples into)");
  const auto t0 = std::chrono::steady_clock::now();
  FidResult res;
  res.total = o.num_samples;
  const std::string dir = o.out_dir;

  // Reads first (every rank sees the same folder), then a barrier, then writes: all ranks agree on what is done.
  const nlohmann::json prev = check_out_dir(dir, o.run);
  const bool resuming = !prev.is_null();
  // The chunk size decides the pixels (it is the batch of every forward pass), so a resumed run keeps the recorded
  // one whatever --batch-size says; a folder of a version without chunking is chunked by this run's batch size.
  res.chunk_size = resuming && prev.contains("chunk_size") ? prev["chunk_size"].get<int64_t>() : p.batch_size;
  MOH_CHECK(res.chunk_size >= 1, "the chunk size must be at least 1, got ", res.chunk_size);
  std::error_code ec;
  fs::create_directories(dir, ec);
  MOH_CHECK(fs::is_directory(dir, ec), "cannot create output folder '", dir, "': ", ec.message());
  const auto missing = missing_fid_samples(dir, o.num_samples);
  res.on_disk = o.num_samples - (int64_t)missing.size();
  uint64_t h = 0;
  for (auto i : missing) h = h * 1000003ull + uint64_t(i);
  g.check_same("set of samples on disk", std::to_string(missing.size()) + " missing, hash " + std::to_string(h));
  const auto labels = fid_labels(p.seed, o.num_samples, o.classes);
  nlohmann::json sidecar = o.sidecar;
  sidecar["tool"] = "moh-generate";
  sidecar["mode"] = "fid";
  sidecar["run"] = o.run;
  sidecar["num_images"] = o.num_samples;
  sidecar["labels"] = labels;
  sidecar["png_names"] = "NNNNNN.png = sample index (at least 6 digits)";
  sidecar["chunk_size"] = res.chunk_size;
  sidecar["chunking"] = "images [c*chunk_size, (c+1)*chunk_size) are computed together as one batch; rank r of W "
                        "takes every W-th chunk that has a missing image";
  g.barrier("checking the output folder");  // every rank has read the folder; writes may start
  if (g.is_main()) {
    remove_stale_temp_files(dir);  // from an interrupted run
    if (!resuming) {               // before the first PNG, so that an interrupted run can always be resumed
      sidecar["complete"] = false;
      write_file_atomic((fs::path(dir) / kSidecar).string(), sidecar.dump(2) + "\n");
    }
  }
  g.barrier("the start of sampling");

  // Whole chunks per rank: every image is computed in the same batch (the same GEMM shapes, so the same rounding)
  // whatever the number of processes, and a resumed chunk is recomputed whole, its missing images written.
  const auto todo = fid_chunks_to_generate(missing, o.num_samples, res.chunk_size);
  std::vector<std::pair<int64_t, int64_t>> mine;  // [first, end) of this rank's chunks
  for (size_t j = g.rank(); j < todo.size(); j += size_t(g.world_size())) mine.push_back(todo[j]);
  std::vector<char> is_missing(size_t(o.num_samples), 0);
  for (auto i : missing) is_missing[size_t(i)] = 1;
  p.rng = "per-sample";
  p.batch_size = res.chunk_size;
  p.progress = false;
  int64_t chunk_images = 0;
  for (const auto& c : todo) chunk_images += c.second - c.first;
  dist::JobProgress progress(g, "fid/image-steps", "sampling", chunk_images * p.steps, "img-steps", o.progress);
  p.on_step = [&](int64_t images) { progress.advance(images); };
  for (const auto& [first, end] : mine) {
    p.sample_indices.clear();
    p.labels.clear();
    for (int64_t i = first; i < end; ++i) {
      p.sample_indices.push_back(i);
      p.labels.push_back(labels[size_t(i)]);
    }
    generate_images(model, vae, p, device, [&](const GeneratedBatch& b) {
      for (int64_t k = 0; k < b.images_u8.size(0); ++k)
        if (is_missing[size_t(b.indices[size_t(k)])])
          write_png_atomic((fs::path(dir) / fid_png_name(b.indices[size_t(k)])).string(), b.images_u8[k]);
    });
  }
  progress.finish_and_wait("sampling");
  g.barrier("the end of sampling");
  res.generated = (int64_t)missing.size();

  if (g.is_main()) {
    const auto still = missing_fid_samples(dir, o.num_samples);
    MOH_CHECK(still.empty(), still.size(), " of ", o.num_samples, " samples are missing in '", dir,
              "' after every rank finished (first: ", fid_png_name(still.empty() ? 0 : still.front()),
              "); run the same command again to generate them");
    pack_npz(dir, o.num_samples);
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sidecar["complete"] = true;
    sidecar["files"] = {"samples.npz", kSidecar};
    sidecar["this_run"] = {{"ranks", g.world_size()},
                           {"generated", res.generated},
                           {"already_on_disk", res.on_disk},
                           {"seconds", res.seconds},
                           {"chunk_size", res.chunk_size},
                           {"chunks_computed", (int64_t)todo.size()}};
    write_file_atomic((fs::path(dir) / kSidecar).string(), sidecar.dump(2) + "\n");
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace moh::dit
