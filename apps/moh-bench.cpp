// moh-bench: speed benchmarks (programs, not tests). Subcommands: attention, dit, vit.
#include <CLI/CLI.hpp>

#include "apps/app_main.h"
#include "apps/bench/bench_common.h"

int main(int argc, char** argv) {
  return moh::run_app("moh-bench", [&]() -> int {
    CLI::App app{"Benchmarks: warm-up, then the median of timed runs; ratios against reference implementations\n"
                 "measured in the same run. Random weights unless --weights is given."};
    app.require_subcommand(1);
    moh::bench::BenchOptions o;
    int threads = 0;
    auto common = [&o, &threads](CLI::App* s) {
      moh::add_threads_option(*s, threads);
      s->add_option("--device", o.device, "auto|cpu|cuda[:N] (default auto)");
      s->add_option("--dtype", o.dtype, "auto|fp32|mixed|bf16|fp16 (default auto: mixed on CUDA = bf16 GEMMs with fp32 LayerNorm/router/stream; fp32 on CPU)");
      s->add_option("--warmup", o.warmup, "untimed warm-up runs (default 3)");
      s->add_option("--iters", o.iters, "timed runs; the median is reported (default 10)");
      s->add_option("--json", o.json_out, "also write results as JSON to this file");
      s->add_option("--only", o.only, "run only these named cases");
      s->add_flag("--profile", o.profile, "after timing, print where the time goes per operator (extra runs)");
    };
    auto* att = app.add_subcommand("attention", "MoH router + sparse-head attention vs masked dense vs dense");
    auto* dit = app.add_subcommand("dit", "MoH-DiT-XL/2-90 forward and end-to-end sampling");
    auto* vit = app.add_subcommand("vit", "MoH-ViT S-80 / B-75 classification throughput");
    for (auto* s : {att, dit, vit}) common(s);
    for (auto* s : {dit, vit}) {
      s->add_option("--input-seed", o.input_seed, "seed of the forward input (default 0); the same seed in "
                    "scripts/bench-official.py --input-seed gives the official code the very same input")
          ->check([](const std::string& v) {
            return v.find('-') == std::string::npos ? std::string() : "must be 0 or more (an unsigned seed), got " + v;
          });
      s->add_option("--against", o.against, "JSON written by scripts/bench-official.py on the same shapes: print the "
                    "official figure next to ours and the ratio");
    }
    dit->add_option("--weights", o.weights, "DiT safetensors (random weights when omitted)");
    vit->add_option("--weights", o.weights, "ViT safetensors (random weights when omitted)");
    if (const auto rc = moh::parse_command_line(app, argc, argv)) return *rc;
    moh::apply_threads_option(threads);
    if (att->parsed()) return moh::bench::bench_attention(o);
    if (dit->parsed()) return moh::bench::bench_dit(o);
    return moh::bench::bench_vit(o);
  });
}
