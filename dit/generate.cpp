// Generation pipeline and its outputs; see dit/generate.h. Mirrors MoH-DiT/sample.py (noise stream, CFG batch,
// decode) and sample_ddp.py (guidance switch, quantisation, .npz layout); torchvision utils.make_grid (grid layout).
#include "dit/generate.h"

#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/image_io.h"
#include "common/progress.h"

namespace moh::dit {
namespace fs = std::filesystem;

namespace {

// A generator on `device` seeded with `seed`, independent of the global default generator: a clone of the
// device's default generator (so no CUDA headers are needed here), then re-seeded. For CUDA this is the same
// Philox stream torch.manual_seed(seed) gives sample.py's randn calls.
torch::Generator seeded_generator(const torch::Device& device, uint64_t seed) {
  auto gen = at::globalContext().defaultGenerator(device).clone();
  gen.set_current_seed(seed);
  return gen;
}

// rng "per-sample": one CPU generator per image, for x_T and every step's noise (see GenerateParams::rng).
struct PerSampleNoise {
  std::vector<torch::Generator> gens;
  std::vector<int64_t> shape;  // one image's [C, L, L]

  torch::Tensor draw() {
    std::vector<torch::Tensor> parts;
    for (auto& g : gens) parts.push_back(torch::randn(shape, g, torch::kFloat32));
    return torch::stack(parts);
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

uint64_t sample_seed(uint64_t seed, int64_t index) {
  uint64_t h = seed + 0x9E3779B97F4A7C15ull;  // splitmix64 of the seed
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  h ^= h >> 31;
  return (h + static_cast<uint64_t>(index) * 0x9E3779B1ull) & 0xFFFFFFFFull;
}

nlohmann::json params_to_json(const GenerateParams& p) {
  return {{"sampler", p.sampler},
          {"rng", p.rng},
          {"steps", p.steps},
          {"eta", p.eta},
          {"cfg_scale", p.cfg_scale},
          {"cfg_all_channels", p.cfg_all_channels},
          {"classifier_free_guidance", p.cfg_scale != 1.0},
          {"seed", p.seed},
          {"batch_size", p.batch_size},
          {"clip_denoised", p.clip_denoised},
          {"quantization", "uint8 = trunc(clamp(127.5 * x + 128, 0, 255)) (sample_ddp.py)"}};
}

torch::Tensor quantize_images(const torch::Tensor& images) {
  // sample_ddp.py: torch.clamp(127.5 * samples + 128.0, 0, 255).permute(0, 2, 3, 1).to("cpu", dtype=torch.uint8)
  auto x = images.to(torch::kFloat32);
  return (x * 127.5 + 128.0).clamp(0, 255).permute({0, 2, 3, 1}).to(torch::kCPU, torch::kUInt8).contiguous();  // [b,C,H,W] -> [b,H,W,C]
}

GenerateStats generate_images(DiT& model, Vae* vae, const GenerateParams& p, const torch::Device& device,
                              const std::function<void(const GeneratedBatch&)>& sink) {
  const auto& cfg = model->config();
  const int64_t n_total = static_cast<int64_t>(p.labels.size());
  MOH_CHECK(n_total > 0, "nothing to generate: give at least one class");
  for (auto l : p.labels)
    MOH_CHECK(l >= 0 && l < cfg.num_classes, "class ", l, " is out of range for model ", cfg.name, " (", cfg.num_classes,
              " classes: 0..", cfg.num_classes - 1, ")");
  MOH_CHECK(p.sampler == "ddpm" || p.sampler == "ddim", "--sampler '", p.sampler, "' is not valid; use ddpm or ddim");
  MOH_CHECK(p.steps >= 2 && p.steps <= 1000, "--steps ", p.steps, " is out of range; use 2..1000 (250 is the default "
            "of the official scripts)");
  MOH_CHECK(p.batch_size >= 1, "--batch-size must be at least 1, got ", p.batch_size);
  MOH_CHECK(p.eta >= 0, "--eta must be >= 0, got ", p.eta);
  MOH_CHECK(p.cfg_scale >= 0, "--cfg-scale must be >= 0, got ", p.cfg_scale);
  const bool use_cfg = p.cfg_scale != 1.0;
  MOH_CHECK(!use_cfg || cfg.has_null_class(), "classifier-free guidance needs a model with a null class "
            "(class_dropout_prob > 0); use --cfg-scale 1");
  if (vae) {
    MOH_CHECK((*vae)->config().latent_channels == cfg.in_channels, "the VAE decodes ", (*vae)->config().latent_channels,
              "-channel latents but model ", cfg.name, " produces ", cfg.in_channels, " channels");
  } else {
    MOH_CHECK(cfg.in_channels == 1 || cfg.in_channels == 3, "model ", cfg.name, " works in a ", cfg.in_channels,
              "-channel latent space and needs a VAE to make images (--vae)");
  }
  if (p.initial_noise) MOH_CHECK(n_total <= p.batch_size, "initial_noise is only supported for a single batch");
  MOH_CHECK(p.rng == "stream" || p.rng == "per-sample", "--rng '", p.rng, "' is not valid; use stream or per-sample");
  const bool per_sample = p.rng == "per-sample";
  MOH_CHECK(p.sample_indices.empty() || (per_sample && (int64_t)p.sample_indices.size() == n_total),
            "internal error: sample_indices need rng per-sample and one index per label");
  MOH_CHECK(!per_sample || (!p.initial_noise && !p.step_noise), "internal error: noise hooks need rng stream");

  torch::NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  const auto diffusion = GaussianDiffusion::create(std::to_string(p.steps), cfg.learn_sigma);
  auto gen = seeded_generator(device, p.seed);
  const int64_t n_batches = (n_total + p.batch_size - 1) / p.batch_size;
  Progress bar("sampling", n_batches * p.steps, "steps", p.progress);
  GenerateStats stats;

  for (int64_t first = 0; first < n_total; first += p.batch_size) {
    const int64_t b = std::min(p.batch_size, n_total - first);
    std::vector<int64_t> labels(p.labels.begin() + first, p.labels.begin() + first + b);
    const auto opts = torch::TensorOptions().device(device).dtype(torch::kFloat32);
    // sample.py order: z first (fp32, on the device), then the per-step draws of the sampler.
    std::vector<int64_t> indices;
    for (int64_t k = first; k < first + b; ++k) indices.push_back(p.sample_indices.empty() ? k : p.sample_indices[k]);
    auto per = std::make_shared<PerSampleNoise>();
    if (per_sample) {
      per->shape = {cfg.in_channels, cfg.input_size, cfg.input_size};
      for (auto idx : indices) per->gens.push_back(at::detail::createCPUGenerator(sample_seed(p.seed, idx)));
    }
    auto z = per_sample ? per->draw().to(opts)
             : p.initial_noise && first == 0
                 ? p.initial_noise->to(opts)
                 : torch::randn({b, cfg.in_channels, cfg.input_size, cfg.input_size}, gen, opts);
    MOH_CHECK(z.sizes() == torch::IntArrayRef({b, cfg.in_channels, cfg.input_size, cfg.input_size}),
              "initial noise has shape ", z.sizes(), ", expected [", b, ", ", cfg.in_channels, ", ", cfg.input_size,
              ", ", cfg.input_size, "]");
    auto y = torch::tensor(labels, torch::TensorOptions().dtype(torch::kInt64)).to(device);
    auto x_T = z;
    if (use_cfg) {  // [cond; null] halves sharing the same z (sample.py)
      x_T = torch::cat({z, z}, 0);
      y = torch::cat({y, torch::full({b}, cfg.null_class(), y.options())}, 0);
    }
    DenoiserOptions dopt;
    dopt.use_cfg = use_cfg;
    dopt.cfg_scale = p.cfg_scale;
    dopt.guide_all_channels = p.cfg_all_channels;
    const auto denoise = make_dit_denoiser(model, y, dopt);
    NoiseFn noise = p.step_noise ? *p.step_noise : randn_noise(gen);
    if (per_sample)  // the [null] half of a guided batch gets the same draws: its result is dropped
      noise = [per](const torch::Tensor& like, int64_t) {
        auto n = per->draw();
        if (like.size(0) == 2 * n.size(0)) n = torch::cat({n, n}, 0);
        return n.to(like.options());
      };
    SamplerOptions so;
    so.on_step = [&bar, &p, b](const SamplerStep&) {
      bar.advance();
      if (p.on_step) p.on_step(b);
    };
    so.clip_denoised = p.clip_denoised;

    const auto ts = std::chrono::steady_clock::now();
    auto samples = p.sampler == "ddpm" ? p_sample_loop(diffusion, denoise, x_T, noise, so)
                                       : ddim_sample_loop(diffusion, denoise, x_T, noise, p.eta, so);
    if (use_cfg) samples = samples.slice(0, 0, b);  // samples.chunk(2)[0]: drop the null-class half
    stats.sampling_seconds += seconds_since(ts);
    stats.model_steps += p.steps;

    const auto td = std::chrono::steady_clock::now();
    torch::Tensor images;
    if (vae) {
      const auto& w = (*vae)->post_quant_conv->weight;
      images = (*vae)->decode(samples.to(w.device(), w.scalar_type()));
    } else {
      images = samples;  // pixel-space model: the sample is the image in [-1, 1]
    }
    images = images.to(torch::kCPU, torch::kFloat32);
    stats.decode_seconds += seconds_since(td);

    GeneratedBatch batch;
    batch.first_index = first;
    batch.indices = indices;
    batch.images = images;
    auto u8 = quantize_images(images);
    if (u8.size(3) == 1) u8 = u8.expand({-1, -1, -1, 3}).contiguous();  // [b,H,W,1] -> [b,H,W,3]: gray as RGB
    batch.images_u8 = u8;
    batch.labels = labels;
    sink(batch);
    stats.images += b;
  }
  bar.finish();
  stats.seconds = seconds_since(t0);
  return stats;
}

// ------------------------------------------------------------------------------------------------ grid, slug
torch::Tensor make_grid_u8(const torch::Tensor& images, int64_t nrow, int64_t padding) {
  MOH_CHECK(images.dim() == 4 && images.scalar_type() == torch::kUInt8, "make_grid expects uint8 [N, H, W, C]");
  MOH_CHECK(nrow >= 1, "--grid-nrow must be at least 1, got ", nrow);
  const int64_t n = images.size(0), H = images.size(1), W = images.size(2), C = images.size(3);
  const int64_t xmaps = std::min(nrow, n), ymaps = (n + xmaps - 1) / xmaps;
  auto grid = torch::zeros({ymaps * (H + padding) + padding, xmaps * (W + padding) + padding, C}, torch::kUInt8);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t r = k / xmaps, c = k % xmaps;
    grid.slice(0, r * (H + padding) + padding, r * (H + padding) + padding + H)
        .slice(1, c * (W + padding) + padding, c * (W + padding) + padding + W)
        .copy_(images[k]);
  }
  return grid;
}

std::string slugify(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch)) out += static_cast<char>(std::tolower(ch));
    else if (!out.empty() && out.back() != '_') out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.substr(0, 48);
}

// ------------------------------------------------------------------------------------------------ npz
// A stored (uncompressed) zip with one member `name`.npy, streamed: sizes are known up front, the CRC is patched
// into the local header at the end. ZIP64 records are written when the member reaches 4 GiB (50k 256^2 images
// are 9.8 GB).
struct NpzStream {
  std::FILE* f = nullptr;
  std::string path;
  std::string member;
  uint64_t data_size = 0, written = 0;
  uint32_t crc = 0;
  bool zip64 = false;
  size_t local_header_size = 0;

  static void put16(std::string& s, uint16_t v) { s += char(v & 0xff), s += char(v >> 8); }
  static void put32(std::string& s, uint32_t v) { for (int i = 0; i < 4; ++i) s += char((v >> (8 * i)) & 0xff); }
  static void put64(std::string& s, uint64_t v) { for (int i = 0; i < 8; ++i) s += char((v >> (8 * i)) & 0xff); }

  void raw(const void* p, size_t n) {
    MOH_CHECK(std::fwrite(p, 1, n, f) == n, "writing '", path, "' failed: ", std::strerror(errno), " (disk full?)");
  }

  void begin(const std::string& p, const std::string& name, const std::vector<int64_t>& shape, bool force_zip64) {
    path = p;
    member = name + ".npy";
    // .npy v1.0 header: magic, version, little-endian header length, dict padded with spaces to 64-byte alignment.
    std::string dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (";
    uint64_t numel = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      dict += (i ? ", " : "") + std::to_string(shape[i]);
      numel *= static_cast<uint64_t>(shape[i]);
    }
    if (shape.size() == 1) dict += ",";  // Python's 1-tuple
    dict += "), }";
    const size_t pre = 10;
    size_t total = pre + dict.size() + 1;
    dict.append((64 - total % 64) % 64, ' ');
    dict += '\n';
    std::string npy_header = "\x93NUMPY";
    npy_header += char(1), npy_header += char(0);
    put16(npy_header, static_cast<uint16_t>(dict.size()));
    npy_header += dict;

    data_size = npy_header.size() + numel;
    zip64 = force_zip64 || data_size >= 0xFFFFFFFFull;
    f = std::fopen(path.c_str(), "wb");
    MOH_CHECK(f != nullptr, "cannot write '", path, "': ", std::strerror(errno));
    std::string lh;
    put32(lh, 0x04034b50);
    put16(lh, zip64 ? 45 : 20);  // version needed
    put16(lh, 0);                // flags
    put16(lh, 0);                // stored
    put16(lh, 0);                // time
    put16(lh, 0x21);             // date 1980-01-01
    put32(lh, 0);                // crc, patched in finish()
    put32(lh, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(data_size));
    put32(lh, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(data_size));
    put16(lh, static_cast<uint16_t>(member.size()));
    put16(lh, zip64 ? 20 : 0);
    lh += member;
    if (zip64) {
      put16(lh, 0x0001);
      put16(lh, 16);
      put64(lh, data_size);  // uncompressed
      put64(lh, data_size);  // compressed
    }
    local_header_size = lh.size();
    raw(lh.data(), lh.size());
    write(npy_header.data(), npy_header.size());
  }

  void write(const void* p, size_t n) {
    const auto* b = static_cast<const Bytef*>(p);
    for (size_t off = 0; off < n;) {  // zlib's crc32 takes a 32-bit length
      const uInt chunk = static_cast<uInt>(std::min<size_t>(n - off, 1u << 30));
      crc = static_cast<uint32_t>(::crc32(crc, b + off, chunk));
      off += chunk;
    }
    raw(p, n);
    written += n;
  }

  void finish() {
    MOH_CHECK(written == data_size, "internal error: npz member '", member, "' got ", written, " bytes, expected ",
              data_size);
    const uint64_t cd_offset = local_header_size + data_size;
    std::string cd;
    put32(cd, 0x02014b50);
    put16(cd, 45);  // made by
    put16(cd, zip64 ? 45 : 20);
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0x21);
    put32(cd, crc);
    put32(cd, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(data_size));
    put32(cd, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(data_size));
    put16(cd, static_cast<uint16_t>(member.size()));
    put16(cd, zip64 ? 20 : 0);
    put16(cd, 0);  // comment
    put16(cd, 0);  // disk
    put16(cd, 0);  // internal attributes
    put32(cd, 0);  // external attributes
    put32(cd, 0);  // local header offset
    cd += member;
    if (zip64) {
      put16(cd, 0x0001);
      put16(cd, 16);
      put64(cd, data_size);
      put64(cd, data_size);
    }
    std::string end;
    const bool big_offset = zip64 || cd_offset >= 0xFFFFFFFFull;
    if (big_offset) {
      const uint64_t z64_offset = cd_offset + cd.size();
      put32(end, 0x06064b50);
      put64(end, 44);
      put16(end, 45);
      put16(end, 45);
      put32(end, 0);
      put32(end, 0);
      put64(end, 1);
      put64(end, 1);
      put64(end, cd.size());
      put64(end, cd_offset);
      put32(end, 0x07064b50);
      put32(end, 0);
      put64(end, z64_offset);
      put32(end, 1);
    }
    put32(end, 0x06054b50);
    put16(end, 0);
    put16(end, 0);
    put16(end, 1);
    put16(end, 1);
    put32(end, static_cast<uint32_t>(cd.size()));
    put32(end, big_offset ? 0xFFFFFFFFu : static_cast<uint32_t>(cd_offset));
    put16(end, 0);
    raw(cd.data(), cd.size());
    raw(end.data(), end.size());
    // Patch the CRC into the local header (offset 14).
    std::string c;
    put32(c, crc);
    MOH_CHECK(std::fseek(f, 14, SEEK_SET) == 0, "seeking in '", path, "' failed: ", std::strerror(errno));
    raw(c.data(), c.size());
    MOH_CHECK(std::fflush(f) == 0 && ::fsync(fileno(f)) == 0, "flushing '", path, "' failed: ", std::strerror(errno));
    std::fclose(f);
    f = nullptr;
  }

  ~NpzStream() {
    if (f) std::fclose(f);
  }
};

void write_npz_u8(const std::string& path, const std::string& name, const torch::Tensor& array, bool force_zip64) {
  MOH_CHECK(array.scalar_type() == torch::kUInt8, "write_npz_u8 expects a uint8 tensor");
  auto a = array.to(torch::kCPU).contiguous();
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    NpzStream npz;
    npz.begin(tmp, name, a.sizes().vec(), force_zip64);
    npz.write(a.data_ptr(), static_cast<size_t>(a.numel()));
    npz.finish();
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error("cannot move the finished file into place at '" + path + "': " + std::strerror(err));
  }
}

void write_npz_u8_streamed(const std::string& path, const std::string& name, const std::vector<int64_t>& shape,
                           const std::function<torch::Tensor(int64_t)>& item) {
  MOH_CHECK(!shape.empty(), "internal error: write_npz_u8_streamed needs a shape");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    NpzStream npz;
    npz.begin(tmp, name, shape, false);
    int64_t per_item = 1;
    for (size_t d = 1; d < shape.size(); ++d) per_item *= shape[d];
    for (int64_t i = 0; i < shape[0]; ++i) {
      auto t = item(i).to(torch::kCPU).contiguous();
      MOH_CHECK(t.scalar_type() == torch::kUInt8 && t.numel() == per_item, "item ", i, " of '", path,
                "' has shape ", t.sizes(), ", expected ", per_item, " uint8 values");
      npz.write(t.data_ptr(), static_cast<size_t>(t.numel()));
    }
    npz.finish();
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error("cannot move the finished file into place at '" + path + "': " + std::strerror(err));
  }
  fsync_parent_dir(path);
}

// ------------------------------------------------------------------------------------------------ writer
GenerationWriter::GenerationWriter(OutputOptions options, int64_t total_images)
    : o_(std::move(options)), total_(total_images) {
  MOH_CHECK(!o_.out_dir.empty(), "--out is required (the folder to write images into)");
  std::error_code ec;
  fs::path out = fs::absolute(o_.out_dir, ec).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();  // "dir/" -> "dir"
  out_path_ = out.string();
  if (fs::exists(out, ec)) {
    MOH_CHECK(fs::is_directory(out, ec), "--out '", o_.out_dir, "' exists and is not a folder; choose a folder path");
    MOH_CHECK(o_.overwrite || fs::is_empty(out, ec), "--out '", o_.out_dir, "' already holds files; choose a new "
              "folder or pass --overwrite to replace same-named files in it");
  }
  const fs::path parent = out.parent_path();
  fs::create_directories(parent, ec);
  MOH_CHECK(!ec && fs::is_directory(parent), "cannot create the folder '", parent.string(), "' for --out '",
            o_.out_dir, "': ", ec ? ec.message() : "not a folder", "; choose a writable --out");
  // Staging folder beside the target (same file system, so the final moves are renames).
  const fs::path staging = parent / ("." + out.filename().string() + ".partial-" + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  fs::create_directory(staging, ec);
  MOH_CHECK(!ec, "cannot write into '", parent.string(), "' for --out '", o_.out_dir, "': ", ec.message(),
            "; choose a writable --out");
  staging_ = staging.string();
  // Probe actual writability now (permissions, read-only mounts) rather than after sampling.
  write_file_atomic(staging_ + "/.probe", "ok");
  fs::remove(staging_ + "/.probe", ec);
}

GenerationWriter::~GenerationWriter() {
  npz_.reset();
  if (!committed_ && !staging_.empty()) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
}

void GenerationWriter::add(const GeneratedBatch& batch, const std::function<std::string(int64_t)>& name_of) {
  const auto& u8 = batch.images_u8;  // [b, H, W, 3]
  if (o_.npz) {
    if (!npz_) {
      npz_ = std::make_unique<NpzStream>();
      npz_->begin(staging_ + "/samples.npz", "arr_0", {total_, u8.size(1), u8.size(2), u8.size(3)}, false);
    }
    npz_->write(u8.data_ptr(), static_cast<size_t>(u8.numel()));
  }
  for (int64_t i = 0; i < u8.size(0); ++i) {
    const int64_t index = batch.first_index + i;
    const int64_t label = batch.labels.at(i);
    if (o_.pngs) {
      char prefix[32];
      std::snprintf(prefix, sizeof prefix, "%06lld_", static_cast<long long>(index));
      const std::string file = prefix + name_of(label) + ".png";
      encode_png(staging_ + "/" + file, image_from_hwc_tensor(u8[i]));
      files_.push_back(file);
    }
    if (o_.grid) grid_images_.push_back(u8[i].clone());
    per_class_count_[label]++;
  }
}

void GenerationWriter::commit(nlohmann::json sidecar) {
  MOH_CHECK(!committed_, "internal error: GenerationWriter::commit called twice");
  if (npz_) {
    npz_->finish();
    npz_.reset();
    files_.push_back("samples.npz");
  }
  if (o_.grid && !grid_images_.empty()) {
    auto grid = make_grid_u8(torch::stack(grid_images_), o_.grid_nrow);
    encode_png(staging_ + "/grid.png", image_from_hwc_tensor(grid));
    files_.push_back("grid.png");
  }
  files_.push_back("generation.json");
  sidecar["files"] = files_;
  write_file_atomic(staging_ + "/generation.json", sidecar.dump(2) + "\n");

  std::error_code ec;
  const fs::path out = out_path_;
  if (!fs::exists(out, ec)) {
    fs::rename(staging_, out, ec);  // the whole folder appears at once
    MOH_CHECK(!ec, "cannot move the finished outputs into '", o_.out_dir, "': ", ec.message());
    fsync_parent_dir(out.string());
  } else {
    for (const auto& f : files_) {
      fs::rename(fs::path(staging_) / f, out / f, ec);
      MOH_CHECK(!ec, "cannot move '", f, "' into '", o_.out_dir, "': ", ec.message());
    }
    fsync_parent_dir((out / "generation.json").string());
    fs::remove_all(staging_, ec);
  }
  committed_ = true;
}

}  // namespace moh::dit
