// Parity runners for the MoH-ViT golden families (shared/golden/README.md case 4):
//   "vit_attn"  - one Attention / AggregatedAttention module (gen_vit.py: attn(x, H, W, index, table));
//   "vit_model" - a whole tiny transnext.TransNeXt: logits, every mid.* intermediate, every buf.* buffer.
// Everything is rebuilt from the file's metadata config; our own CPB tables/buffers are used and compared.
#include <map>
#include <string>

#include "common/error.h"
#include "parity/parity.h"
#include "common/weights/state_dict.h"
#include "vit/attention.h"
#include "vit/config.h"
#include "vit/cpb.h"
#include "vit/model.h"

namespace moh::vit {
namespace {

// Constant tables are recomputed in float32 with the official op order; they may differ from the stored ones only
// by the last bit of a log, and integer tables must match exactly.
const Tolerance kExact{0.0, 0.0};
const Tolerance kTable{1e-6, 1e-6};

void add_exact(std::vector<ParityCheck>& checks, const GoldenFile& g, const std::string& name,
               const torch::Tensor& ours) {
  if (!g.has(name)) return;
  const bool integral = !g.get(name).is_floating_point();
  checks.push_back({name, ours, g.get(name), integral ? kExact : kTable});
}

Size2 read_size2(const nlohmann::json& v, const std::string& key, const std::string& where) {
  if (v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
  MOH_CHECK(v.is_array() && v.size() == 2, where, ": config '", key, "' must be an integer or a pair, got ", v.dump());
  return {v[0].get<int64_t>(), v[1].get<int64_t>()};
}

std::vector<ParityCheck> run_vit_attn(const GoldenFile& g) {
  const auto& c = g.config();
  const std::string where = "reference file '" + g.path() + "'";
  try {
    const std::string cls = c.at("cls").get<std::string>();
    const bool aggregated = cls == "AggregatedAttention";
    if (!aggregated && cls != "Attention") throw Unsupported(where + ": unknown attention class '" + cls + "'");
    AttentionOptions o;
    o.dim = c.at("dim").get<int64_t>();
    o.num_heads = c.at("num_heads").get<int64_t>();
    const int64_t H = c.at("H").get<int64_t>(), W = c.at("W").get<int64_t>();
    o.input_resolution = c.contains("input_resolution") ? read_size2(c["input_resolution"], "input_resolution", where)
                                                        : Size2{H, W};
    o.qkv_bias = c.value("qkv_bias", true);
    o.shared_head = c.at("shared_head").get<int64_t>();
    o.routed_head = c.at("routed_head").get<int64_t>();
    o.sr_ratio = c.value("sr_ratio", int64_t{1});
    Size2 key = o.input_resolution;
    if (aggregated) {
      o.window_size = c.at("window_size").get<int64_t>();
      const auto& fixed = c.contains("fixed_pool_size") ? c["fixed_pool_size"] : nlohmann::json(nullptr);
      // Official: fixed_pool_size if given, else input_resolution // sr_ratio.
      o.pool_size = fixed.is_null() ? Size2{o.input_resolution[0] / o.sr_ratio, o.input_resolution[1] / o.sr_ratio}
                                    : Size2{fixed.get<int64_t>(), fixed.get<int64_t>()};
      key = o.pool_size;
    }
    if (c.contains("key_size"))
      MOH_CHECK(read_size2(c["key_size"], "key_size", where) == key, where, ": recorded key_size ",
                c["key_size"].dump(), " differs from the one the official rule gives (", key[0], "x", key[1], ")");
    const auto& pre = c.contains("pretrain_size") ? c["pretrain_size"] : nlohmann::json(nullptr);
    const Size2 pretrain = pre.is_null() ? o.input_resolution : read_size2(pre, "pretrain_size", where);

    const auto tables = relative_position_cpb(o.input_resolution, key, pretrain);
    AttentionDebug dbg;
    torch::Tensor y;
    std::vector<ParityCheck> checks;
    LoadOptions lo;
    lo.source = where;
    const auto x = g.get("in.x");
    if (aggregated) {
      AggregatedAttention m(o);
      load_state_dict(*m, g.weights(), lo);
      m->eval();
      y = m->forward(x, H, W, tables, &dbg);
      add_exact(checks, g, "buf.seq_length_scale", m->seq_length_scale());
      add_exact(checks, g, "buf.padding_mask", m->padding_mask().to(torch::kInt64));
    } else {
      Attention m(o);
      load_state_dict(*m, g.weights(), lo);
      m->eval();
      y = m->forward(x, H, W, tables, &dbg);
      add_exact(checks, g, "buf.seq_length_scale", torch::tensor({m->seq_length_scale()}));
    }
    add_exact(checks, g, "in.relative_pos_index", tables.index);
    add_exact(checks, g, "in.relative_coords_table", tables.coords);
    add_check(checks, g, "out.y", y);
    add_check(checks, g, "mid.gates", dbg.gates);
    if (dbg.router.router_probs.defined()) {
      add_check(checks, g, "mid.router_probs", dbg.router.router_probs);
      add_exact(checks, g, "mid.router_topk_indices", dbg.router.topk_indices);
    }
    return checks;
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": metadata config is missing a field or has a wrong type (" + e.what() + ")");
  }
}

std::vector<ParityCheck> run_vit_model(const GoldenFile& g) {
  const std::string where = "reference file '" + g.path() + "'";
  MOH_CHECK(g.config().contains("model"), where, ": metadata config has no 'model' object");
  auto cfg = vit_config_from_json(g.config()["model"], where + " (config.model)");
  TransNeXt model(cfg);
  LoadOptions lo;
  lo.source = where;
  load_state_dict(*model, g.weights(), lo);
  model->eval();

  ViTRecord rec;
  auto logits = model->forward(g.get("in.x"), &rec);
  std::vector<ParityCheck> checks;
  add_check(checks, g, "out.logits", logits);
  for (const auto& name : g.names_with_prefix("mid.")) {
    auto it = rec.find(name.substr(4));
    MOH_CHECK(it != rec.end(), where, ": intermediate '", name, "' has no counterpart in this implementation");
    add_check(checks, g, name, it->second);
  }
  const auto bufs = model->official_buffers();
  for (const auto& name : g.names_with_prefix("buf.")) {
    auto it = bufs.find(name.substr(4));
    MOH_CHECK(it != bufs.end(), where, ": buffer '", name, "' has no counterpart in this implementation");
    auto ours = it->second.scalar_type() == torch::kBool ? it->second.to(torch::kInt64) : it->second;
    add_exact(checks, g, name, ours);
  }
  return checks;
}

}  // namespace

// Declared in vit/parity.cpp (vit/parity.h exposes only the combined map).
std::map<std::string, ParityRunner> model_parity_runners() {
  return {{"vit_attn", run_vit_attn}, {"vit_model", run_vit_model}};
}

}  // namespace moh::vit
