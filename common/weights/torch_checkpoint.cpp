// torch.save zip checkpoints -> named CPU tensors over the mapped storages (see torch_checkpoint.h).
#include "common/weights/torch_checkpoint.h"

#include <cstring>
#include <set>

#include "common/error.h"
#include "common/weights/safetensors.h"  // to_torch_dtype

namespace moh {
namespace {

constexpr uint64_t kMaxPickleBytes = 1ull << 30;  // data.pkl holds no tensor data; real ones are well under 10 MB
constexpr int kMaxNesting = 8;                   // dicts inside the weights dict that are flattened with '.'

std::string strip_wrappers(std::string key) {
  // DistributedDataParallel ("module.") and torch.compile ("_orig_mod.") wrappers, in any combination.
  for (bool again = true; again;) {
    again = false;
    for (const char* p : {"module.", "_orig_mod."}) {
      const size_t n = std::strlen(p);
      if (key.size() > n && key.compare(0, n, p) == 0) {
        key.erase(0, n);
        again = true;
      }
    }
  }
  return key;
}

bool has_tensor_values(const pickle::Value& d) {
  if (d.kind != pickle::Kind::Dict) return false;
  for (size_t i = 1; i < d.items.size(); i += 2)
    if (d.items[i]->kind == pickle::Kind::Tensor) return true;
  return false;
}

}  // namespace

TorchCheckpoint::TorchCheckpoint(const std::string& path, const std::string& key) : path_(path) {
  map_ = std::make_shared<MappedFile>(path);
  const std::string where = "PyTorch checkpoint '" + path + "': ";
  MOH_CHECK(map_->size() >= 4 && std::memcmp(map_->data(), "PK\x03\x04", 4) == 0, where,
            "not a zip archive (torch.save writes zip files since torch 1.6)");
  zip_ = std::make_unique<ZipArchive>(map_->data(), map_->size(), path);

  // <prefix>/data.pkl, the prefix being whatever folder name torch.save chose.
  const ZipEntry* pkl = nullptr;
  for (const auto& e : zip_->entries()) {
    const size_t slash = e.name.find('/');
    if (slash == std::string::npos || e.name.compare(slash, std::string::npos, "/data.pkl") != 0) continue;
    MOH_CHECK(pkl == nullptr, where, "holds two pickles ('", pkl ? pkl->name : "", "' and '", e.name,
              "'); not a single torch.save checkpoint");
    pkl = &e;
  }
  MOH_CHECK(pkl != nullptr, where, "has no <folder>/data.pkl entry; this zip was not written by torch.save");
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - std::strlen("data.pkl"));
  if (const ZipEntry* bo = zip_->find(prefix + "byteorder")) {
    const auto b = zip_->read(*bo, 64);
    MOH_CHECK(std::string(b.begin(), b.end()) == "little", where, "was written on a big-endian machine; not supported");
  }

  std::vector<uint8_t> pkl_copy;
  const uint8_t* pkl_data;
  if (pkl->method == 0) {
    pkl_data = zip_->stored_data(*pkl);
  } else {
    pkl_copy = zip_->read(*pkl, kMaxPickleBytes);
    pkl_data = pkl_copy.data();
  }
  MOH_CHECK(pkl->size <= kMaxPickleBytes, where, "data.pkl is ", pkl->size, " bytes (more than ", kMaxPickleBytes, ")");
  pickle_ = pickle::unpickle(pkl_data, static_cast<size_t>(pkl->size), path);

  // Every storage the pickle names must exist and hold the bytes it declares.
  for (const auto& s : pickle_.storages) {
    const std::string entry = prefix + "data/" + s.key;
    const ZipEntry* e = zip_->find(entry);
    MOH_CHECK(e != nullptr, where, "storage entry '", entry, "' is missing from the archive (the file is truncated or corrupt)");
    const uint64_t need = s.numel * dtype_size(s.dtype);
    MOH_CHECK(e->size >= need, where, "storage entry '", entry, "' holds ", e->size, " bytes but the pickle declares ",
              s.numel, " elements of ", dtype_name(s.dtype), " (", need, " bytes); the file is truncated or corrupt");
    storage_entries_.push_back(e);
  }

  // Which dict holds the weights.
  const pickle::Value& root = *pickle_.root;
  MOH_CHECK(root.kind == pickle::Kind::Dict, where, "holds a ", pickle::kind_name(root.kind),
            ", not a dict of tensors (save model.state_dict(), not the model object)");
  auto list_keys = [&] {
    std::string s;
    for (const auto& k : pickle::dict_keys(root)) s += (s.empty() ? "" : ", ") + k;
    return s.empty() ? std::string("(none)") : s;
  };
  const pickle::Value* weights = nullptr;
  if (!key.empty()) {
    weights = pickle::dict_get(root, key);
    MOH_CHECK(weights != nullptr, where, "has no top-level entry '", key, "' (entries: ", list_keys(), ")");
    MOH_CHECK(weights->kind == pickle::Kind::Dict, where, "entry '", key, "' is a ", pickle::kind_name(weights->kind),
              ", not a dict of tensors");
    key_used_ = key;
  } else {
    for (const char* k : {"ema", "model", "state_dict"}) {
      const pickle::Value* v = pickle::dict_get(root, k);
      if (v && has_tensor_values(*v)) {
        weights = v;
        key_used_ = k;
        break;
      }
    }
    if (!weights) {
      MOH_CHECK(has_tensor_values(root), where, "has no tensors under 'ema', 'model' or 'state_dict' and none at the ",
                "top level (entries: ", list_keys(), "); choose the entry with a checkpoint key");
      weights = &root;
    }
  }

  // Flatten (nested dicts joined with '.', bounded depth; an explicit work list, no recursion).
  struct Work {
    const pickle::Value* dict;
    std::string prefix;
    int depth;
  };
  std::vector<Work> work{{weights, "", 0}};
  std::map<std::string, std::string> origin;  // stripped name -> original key (to tell duplicates from clashes)
  std::set<const pickle::Value*> visited{weights};  // each dict once: shared or cyclic references cost nothing
  while (!work.empty()) {
    const Work w = work.back();
    work.pop_back();
    std::vector<Work> nested;
    for (size_t i = 0; i + 1 < w.dict->items.size(); i += 2) {
      const pickle::Value* k = w.dict->items[i];
      const pickle::Value* v = w.dict->items[i + 1];
      std::string name;
      if (k->kind == pickle::Kind::Str) name = k->s;
      else if (k->kind == pickle::Kind::Int) name = std::to_string(k->i);
      else continue;
      name = w.prefix + name;
      if (v->kind == pickle::Kind::Dict) {
        if (w.depth < kMaxNesting && visited.insert(v).second) nested.push_back({v, name + ".", w.depth + 1});
        continue;
      }
      if (v->kind != pickle::Kind::Tensor) continue;  // e.g. an int counter next to the weights
      const std::string stripped = strip_wrappers(name);
      auto it = origin.find(stripped);
      if (it != origin.end()) {
        MOH_CHECK(it->second == name, where, "tensors '", it->second, "' and '", name, "' both become '", stripped,
                  "' once the module./_orig_mod. prefixes are removed");
        by_name_[stripped] = v->index;  // a repeated key: the later value wins, as in Python
        continue;
      }
      origin[stripped] = name;
      by_name_[stripped] = v->index;
      names_.push_back(stripped);
    }
    work.insert(work.end(), nested.rbegin(), nested.rend());  // keep file order
  }
  MOH_CHECK(!names_.empty(), where, "entry '", key_used_, "' holds no tensors");

  if (const pickle::Value* args = pickle::dict_get(root, "args")) args_json_ = pickle::to_json(*args);
}

std::vector<std::string> TorchCheckpoint::top_level_keys() const { return pickle::dict_keys(*pickle_.root); }

const pickle::TensorRef& TorchCheckpoint::ref(const std::string& name) const {
  auto it = by_name_.find(name);
  MOH_CHECK(it != by_name_.end(), "PyTorch checkpoint '", path_, "' has no tensor named '", name, "'");
  return pickle_.tensors[it->second];
}

torch::Dtype TorchCheckpoint::dtype(const std::string& name) const {
  return to_torch_dtype(pickle_.storages[ref(name).storage].dtype);
}

std::vector<int64_t> TorchCheckpoint::shape(const std::string& name) const { return ref(name).sizes; }

std::shared_ptr<std::vector<uint8_t>> TorchCheckpoint::storage_copy(size_t storage) const {
  std::lock_guard<std::mutex> lock(copies_mutex_);
  auto& slot = copies_[storage];
  if (!slot) {
    const ZipEntry& e = *storage_entries_[storage];
    const auto& s = pickle_.storages[storage];
    slot = std::make_shared<std::vector<uint8_t>>(zip_->read(e, s.numel * dtype_size(s.dtype) + (1u << 20)));
  }
  return slot;
}

torch::Tensor TorchCheckpoint::tensor(const std::string& name) const {
  const pickle::TensorRef& t = ref(name);
  const pickle::StorageRef& s = pickle_.storages[t.storage];
  const ZipEntry& e = *storage_entries_[t.storage];
  const uint64_t es = dtype_size(s.dtype);
  const auto options = torch::TensorOptions().dtype(to_torch_dtype(s.dtype));
  if (e.method == 0 && e.data_offset % es == 0) {
    // Zero-copy: the mapping is page-aligned, so an element-aligned offset gives aligned elements.
    uint8_t* base = const_cast<uint8_t*>(map_->data()) + e.data_offset + static_cast<uint64_t>(t.offset) * es;
    std::shared_ptr<MappedFile> keep = map_;
    return torch::from_blob(base, t.sizes, t.strides, [keep](void*) {}, options);
  }
  auto buf = storage_copy(t.storage);
  uint8_t* base = buf->data() + static_cast<uint64_t>(t.offset) * es;
  return torch::from_blob(base, t.sizes, t.strides, [buf](void*) {}, options);
}

void TorchCheckpoint::drop_pages(const std::string& name) const {
  const ZipEntry& e = *storage_entries_[ref(name).storage];
  if (e.method == 0) map_->drop_pages(e.data_offset, e.size);
}

}  // namespace moh
