//! Benchmark of the image pipeline (`make_variants_using` with the lab's three variants).
//!
//! A plain harness, no criterion: it generates its inputs in code (photo-like pictures: smooth
//! gradients, low-frequency shapes, fine texture and deterministic noise, so the JPEGs have
//! realistic sizes), warms up, then runs the pipeline in a loop, with each JPEG codec the build
//! has, for at most a fixed time per input. It prints the iteration count, mean, p50, p99 and
//! min in milliseconds, the stage split (decode / resize / encode, from `PipelineTimings`) and a
//! Markdown table for BENCHMARKS.md.
//!
//! The targets are for one core, so pin it:
//!
//! ```text
//! taskset -c 0 cargo bench -p hybridlab-imaging --bench pipeline
//! taskset -c 0 cargo bench -p hybridlab-imaging --bench pipeline -- --quick
//! ```
//!
//! `--quick` (or `HYBRIDLAB_BENCH_QUICK=1`) measures each input for 0.5 s instead of 3 s.
//! `HYBRIDLAB_BENCH_WRITE_INPUTS=DIR` also writes the generated inputs to DIR, to look at them
//! or to profile a decoder on them.

use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration, Instant};

use hybridlab_imaging::{
    DecodeLimits, JpegCodec, LAB_VARIANTS, PipelineTimings, decode_cost, make_variants_using,
};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

/// How long each input is measured for, after the warm-up.
const MEASURE: Duration = Duration::from_secs(3);
const MEASURE_QUICK: Duration = Duration::from_millis(500);
/// The warm-up: at least this many calls, and at least this long (whichever takes longer,
/// capped by `WARMUP_MAX_CALLS`).
const WARMUP_CALLS: usize = 3;
const WARMUP_TIME: Duration = Duration::from_millis(300);
const WARMUP_MAX_CALLS: usize = 20;
/// Upper bound on measured calls, so a very fast input does not collect millions of samples.
const MAX_ITERATIONS: usize = 10_000;

struct Input {
    name: &'static str,
    bytes: Vec<u8>,
    /// The one-core target for the mean, where the lab has one.
    target_ms: Option<f64>,
}

struct Stats {
    iterations: usize,
    mean: f64,
    p50: f64,
    p99: f64,
    min: f64,
    decode: f64,
    resize: f64,
    encode: f64,
}

/// A small deterministic PRNG (SplitMix64), so every run measures the same pictures.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A photo-like RGB picture: a sky-to-ground gradient, a few soft blobs, a fine directional
/// texture (like foliage or fabric) and per-pixel sensor noise.
fn photo_like(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix(seed);
    let blobs: Vec<(f32, f32, f32, [f32; 3])> = (0..12)
        .map(|_| {
            let unit = |rng: &mut SplitMix| (rng.next() >> 40) as f32 / (1u64 << 24) as f32;
            let x = unit(&mut rng) * width as f32;
            let y = unit(&mut rng) * height as f32;
            let radius = (0.05 + 0.2 * unit(&mut rng)) * width.max(height) as f32;
            let colour = [
                unit(&mut rng) * 120.0 - 60.0,
                unit(&mut rng) * 120.0 - 60.0,
                unit(&mut rng) * 120.0 - 60.0,
            ];
            (x, y, radius, colour)
        })
        .collect();
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    let (w, h) = (width as f32, height as f32);
    for y in 0..height {
        let fy = y as f32 / h;
        for x in 0..width {
            let fx = x as f32 / w;
            let mut rgb = [
                90.0 + 100.0 * fy + 30.0 * fx,
                120.0 + 60.0 * fy - 20.0 * fx,
                200.0 - 120.0 * fy,
            ];
            for &(bx, by, radius, colour) in &blobs {
                let (dx, dy) = ((x as f32 - bx) / radius, (y as f32 - by) / radius);
                let d2 = dx * dx + dy * dy;
                if d2 < 1.0 {
                    let weight = (1.0 - d2) * (1.0 - d2);
                    for (channel, delta) in rgb.iter_mut().zip(colour) {
                        *channel += weight * delta;
                    }
                }
            }
            // Texture: strongest in the lower half, as grass or gravel would be.
            let texture = (x as f32 * 0.31 + (y as f32 * 0.07).sin() * 4.0).sin()
                * (y as f32 * 0.23 + x as f32 * 0.05).cos()
                * (6.0 + 18.0 * fy);
            let noise = rng.next();
            for (index, channel) in rgb.iter_mut().enumerate() {
                let grain = ((noise >> (index * 8)) & 0xFF) as f32 / 255.0 * 12.0 - 6.0;
                pixels.push((*channel + texture + grain).clamp(0.0, 255.0) as u8);
            }
        }
    }
    pixels
}

fn jpeg(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let pixels = photo_like(width, height, seed);
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(&pixels, width, height, ExtendedColorType::Rgb8)
        .expect("encoding the benchmark JPEG");
    out
}

fn png(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let pixels = photo_like(width, height, seed);
    let mut out = Vec::new();
    PngEncoder::new(Cursor::new(&mut out))
        .write_image(&pixels, width, height, ExtendedColorType::Rgb8)
        .expect("encoding the benchmark PNG");
    out
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn run_once(codec: JpegCodec, bytes: &[u8]) -> (Duration, PipelineTimings) {
    let started = Instant::now();
    let processed = make_variants_using(
        codec,
        black_box(bytes),
        &LAB_VARIANTS,
        DecodeLimits::default(),
        &[],
    )
    .expect("the benchmark input must process");
    let elapsed = started.elapsed();
    black_box(&processed.variants);
    (elapsed, processed.timings)
}

fn measure(codec: JpegCodec, bytes: &[u8], budget: Duration) -> Stats {
    let warm_up_started = Instant::now();
    let mut calls = 0;
    while calls < WARMUP_MAX_CALLS
        && (calls < WARMUP_CALLS || warm_up_started.elapsed() < WARMUP_TIME)
    {
        run_once(codec, bytes);
        calls += 1;
    }

    let mut totals = Vec::new();
    let mut stages = PipelineTimings::default();
    let started = Instant::now();
    // At least one measured call even when a single call is over the budget.
    while totals.is_empty() || (started.elapsed() < budget && totals.len() < MAX_ITERATIONS) {
        let (elapsed, timings) = run_once(codec, bytes);
        totals.push(elapsed);
        stages.decode += timings.decode;
        stages.resize += timings.resize;
        stages.encode += timings.encode;
    }

    totals.sort_unstable();
    let n = totals.len();
    let percentile = |p: f64| {
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        ms(totals[rank.clamp(1, n) - 1])
    };
    let per_call = |total: Duration| ms(total) / n as f64;
    Stats {
        iterations: n,
        mean: per_call(totals.iter().sum()),
        p50: percentile(50.0),
        p99: percentile(99.0),
        min: ms(totals[0]),
        decode: per_call(stages.decode),
        resize: per_call(stages.resize),
        encode: per_call(stages.encode),
    }
}

/// Mean microseconds of one [`decode_cost`] call on `bytes`.
fn measure_checks(bytes: &[u8], budget: Duration) -> f64 {
    let started = Instant::now();
    let mut calls: u32 = 0;
    while calls == 0 || started.elapsed() < budget {
        black_box(
            decode_cost(black_box(bytes), &LAB_VARIANTS, DecodeLimits::default())
                .expect("the benchmark input passes the checks"),
        );
        calls += 1;
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(calls)
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick")
        || std::env::var("HYBRIDLAB_BENCH_QUICK")
            .is_ok_and(|value| !value.is_empty() && value != "0");
    let budget = if quick { MEASURE_QUICK } else { MEASURE };

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "hybridlab-imaging pipeline benchmark: variants {}, {} per input{}",
        LAB_VARIANTS
            .iter()
            .map(|spec| format!("{} {} px", spec.name, spec.longest_side))
            .collect::<Vec<_>>()
            .join(", "),
        if quick { "0.5 s" } else { "3 s" },
        if quick { " (quick)" } else { "" },
    );
    if cores != 1 {
        println!(
            "warning: this process may use {cores} cores; the targets are for one core, run it \
             as `taskset -c 0 cargo bench -p hybridlab-imaging --bench pipeline`"
        );
    }

    let generating = Instant::now();
    let inputs = [
        Input {
            name: "JPEG 4000x3000 (12 MP)",
            bytes: jpeg(4000, 3000, 1),
            target_ms: Some(60.0),
        },
        Input {
            name: "JPEG 1155x866 (1 MP)",
            bytes: jpeg(1155, 866, 2),
            target_ms: Some(15.0),
        },
        Input {
            name: "PNG 1155x866 (1 MP)",
            bytes: png(1155, 866, 3),
            target_ms: None,
        },
    ];
    println!(
        "inputs generated in {:.1} s: {}",
        generating.elapsed().as_secs_f64(),
        inputs
            .iter()
            .map(|input| format!("{} {} KiB", input.name, input.bytes.len() / 1024))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(dir) = std::env::var_os("HYBRIDLAB_BENCH_WRITE_INPUTS") {
        let dir = std::path::PathBuf::from(dir);
        for (input, file) in inputs.iter().zip(["12mp.jpg", "1mp.jpg", "1mp.png"]) {
            std::fs::write(dir.join(file), &input.bytes).expect("writing a benchmark input");
        }
        println!("inputs written to {}", dir.display());
    }
    println!();

    let codecs = JpegCodec::available();
    println!(
        "JPEG codecs in this build: {} (the first is the pipeline's)\n",
        codecs
            .iter()
            .map(|codec| codec.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut results = Vec::new();
    for input in &inputs {
        for &codec in &codecs {
            let stats = measure(codec, &input.bytes, budget);
            println!("{}, {}", input.name, codec.name());
            println!(
                "  iterations {:>6}   mean {:>8.2} ms   p50 {:>8.2} ms   p99 {:>8.2} ms   min {:>8.2} ms",
                stats.iterations, stats.mean, stats.p50, stats.p99, stats.min
            );
            println!(
                "  stages (mean)      decode {:>6.2} ms   resize {:>6.2} ms   encode {:>6.2} ms",
                stats.decode, stats.resize, stats.encode
            );
            if let Some(target) = input.target_ms {
                let verdict = if stats.mean <= target {
                    "met"
                } else {
                    "MISSED"
                };
                println!("  target ≤ {target:.0} ms (mean, one core): {verdict}");
            }
            println!();
            results.push((input, codec, stats));
        }
    }

    // The checks every image meets before any codec runs (the JPEG marker walk, the GIF
    // frames, the memory estimate): part of each decode above, measured alone here.
    println!("checks before decoding (decode_cost), mean of calls over {budget:?}:");
    for input in &inputs {
        let per_call = measure_checks(&input.bytes, budget);
        println!("  {:<24} {per_call:>8.1} µs", input.name);
    }
    println!();

    println!(
        "| input | JPEG codec | size | iterations | mean ms | p50 ms | p99 ms | min ms | decode ms | resize ms | encode ms | target |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for (input, codec, stats) in &results {
        let target = match input.target_ms {
            Some(target) if stats.mean <= target => format!("≤ {target:.0} ms: met"),
            Some(target) => format!("≤ {target:.0} ms: missed"),
            None => "none".to_string(),
        };
        println!(
            "| {} | {} | {} KiB | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            input.name,
            codec.name(),
            input.bytes.len() / 1024,
            stats.iterations,
            stats.mean,
            stats.p50,
            stats.p99,
            stats.min,
            stats.decode,
            stats.resize,
            stats.encode,
            target
        );
    }
}
