"""The sizing formulas: hand-checked worked examples and monotonicity properties."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufleet.catalog import GpuModel
from gpufleet.errors import SpecError
from gpufleet.sizing import (
    capacity_after_losses,
    fit_memory,
    forecast_tokens_per_s,
    kv_cache_bytes,
    left_after_losses,
    loss_domains,
    nodes_after_losses,
    nodes_surviving_losses,
    size_inference,
    size_training,
    training_flops,
    zone_margin_sites,
)

# A GPU with round numbers, so the expected values below can be checked by hand.
PETA_GPU = GpuModel(name="P1", memory_gib=80, tdp_w=700, bf16_dense_tflops=1000, fp8_dense_tflops=None,
                    tdp_status="verified", tflops_status="verified", source="https://example.invalid/p1")


def test_training_flops_is_six_n_d_and_uses_active_params_for_moe() -> None:
    assert training_flops(7e10, 1.4e12) == pytest.approx(5.88e23)
    # Mixture-of-experts: 1T total, 32B active -> compute follows the active parameters.
    assert training_flops(1e12, 1e13, active_params=3.2e10) == pytest.approx(6 * 3.2e10 * 1e13)


def test_training_worked_example() -> None:
    # C = 6 * 1e9 * 1e12 = 6e21 FLOPs; per GPU 1e15 * 0.5 = 5e14 FLOP/s -> 1.2e7 GPU-seconds.
    # Over 1 day (86,400 s): 138.9 GPUs -> 18 nodes of 8 = 144 GPUs -> 0.9645 days.
    result = size_training(flops=6e21, gpu=PETA_GPU, gpus_per_node=8, deadline_days=1, mfu=0.5)
    assert result.gpus_exact == pytest.approx(138.888, rel=1e-4)
    assert (result.nodes, result.gpus) == (18, 144)
    assert result.gpu_hours == pytest.approx(3333.33, rel=1e-5)
    assert result.days_at_rounded_size == pytest.approx(1.2e7 / 144 / 86400)
    assert result.meets_deadline
    assert set(result.contract()) == {"flops", "gpus", "nodes", "gpu_hours", "days_at_rounded_size"}


def test_training_exact_node_multiple_does_not_round_up_on_float_noise() -> None:
    # 6e21 FLOPs at 5e14 FLOP/s over 1.2e7/(144*86400) days needs exactly 144 GPUs = 18 nodes.
    days = 1.2e7 / 144 / 86400
    assert size_training(flops=6e21, gpu=PETA_GPU, gpus_per_node=8, deadline_days=days, mfu=0.5).nodes == 18


def test_training_fixed_nodes_reports_days_and_missed_deadline() -> None:
    result = size_training(flops=6e21, gpu=PETA_GPU, gpus_per_node=8, deadline_days=1, mfu=0.5, fixed_nodes=9)
    assert result.nodes == 9
    assert result.days_at_rounded_size == pytest.approx(1.2e7 / 72 / 86400)
    assert not result.meets_deadline


def test_training_refuses_a_gpu_without_published_peak() -> None:
    unknown = GpuModel(name="U1", memory_gib=24, tdp_w=None, bf16_dense_tflops=None, fp8_dense_tflops=None,
                       tdp_status="unverified", tflops_status="unverified", source="https://example.invalid/u1")
    with pytest.raises(SpecError, match="no published dense BF16 peak"):
        size_training(flops=1e20, gpu=unknown, gpus_per_node=8, deadline_days=1, mfu=0.4)


def test_kv_cache_worked_example_llama_70b() -> None:
    # 2 (K and V) * 80 layers * 8 KV heads * 128 dims * 2 bytes = 327,680 bytes per token;
    # 8,192 tokens * 16 sequences = 131,072 tokens -> 42.95 GB.
    kv = kv_cache_bytes(layers=80, kv_heads=8, head_dim=128, dtype="bf16", context_tokens=8192, concurrency=16)
    assert kv == 327_680 * 131_072


def test_memory_fit_worked_example_llama_70b_on_80_gib() -> None:
    # 140 GB weights + 42.95 GB KV = 182.95 GB; usable per GPU 80 GiB * 0.9 = 77.3 GB
    # -> 2.37 GPUs -> the next power of two is 4.
    fit = fit_memory(params=7e10, layers=80, kv_heads=8, head_dim=128, dtype="bf16", context_tokens=8192,
                     concurrency=16, gpu_memory_gib=80, gpus_per_node=8)
    assert fit.weights_gb == pytest.approx(140.0)
    assert fit.kv_cache_gb == pytest.approx(42.95, abs=0.01)
    assert fit.usable_gb_per_gpu == pytest.approx(80 * 2**30 * 0.9 / 1e9)
    assert fit.gpus_per_replica == 4 and fit.fits


def test_memory_fit_goes_to_whole_nodes_beyond_one_node() -> None:
    # 405B in bf16 = 810 GB of weights alone: more than 8 x 77.3 GB, so two whole nodes (16 GPUs).
    fit = fit_memory(params=4.05e11, layers=126, kv_heads=8, head_dim=128, dtype="bf16", context_tokens=4096,
                     concurrency=4, gpu_memory_gib=80, gpus_per_node=8)
    assert fit.gpus_per_replica == 16


def test_memory_fit_int4_halves_bytes_per_parameter() -> None:
    fit = fit_memory(params=7e10, layers=80, kv_heads=8, head_dim=128, dtype="int4", kv_dtype="fp16",
                     context_tokens=1024, concurrency=1, gpu_memory_gib=48, gpus_per_node=8)
    assert fit.weights_gb == pytest.approx(35.0)
    assert fit.gpus_per_replica == 1


def test_forecast_compounds_monthly_growth() -> None:
    # 10 % a month for 12 months (365.25 days) -> 1.1^12.
    assert forecast_tokens_per_s(1000, 0.10, 365.25) == pytest.approx(1000 * 1.1**12)
    assert forecast_tokens_per_s(1000, 0.0, 500) == 1000


def test_inference_worked_example() -> None:
    fit = fit_memory(params=8e9, layers=32, kv_heads=8, head_dim=128, dtype="bf16", context_tokens=8192,
                     concurrency=16, gpu_memory_gib=80, gpus_per_node=8)
    assert fit.gpus_per_replica == 1  # 16 GB weights + 17.2 GB KV fit in one 80 GiB GPU
    result = size_inference(memory=fit, gpus_per_node=8, tokens_per_s_per_replica=2000, peak_tokens_per_s=20000,
                            growth_per_month=0.0, lead_time_days=30, horizon_days=90, headroom=0.2,
                            boot_minutes=10, demand_ramp_per_minute=0.02)
    # 20,000 tok/s * 1.2 / 2,000 per replica = 12 replicas; 8 replicas per node -> 2 nodes.
    assert (result.replicas, result.replicas_per_node, result.nodes) == (12, 8, 2)
    # Warm capacity: 20 % of peak (2 %/min * 10 min) = 4,000 tok/s = 1 node of 16,000 tok/s.
    assert result.warm_nodes == 1


def test_zone_loss_margin_spreads_evenly() -> None:
    # 10 nodes needed over 3 zones, surviving 1 loss: 5 per zone -> 15, and 10 remain after a loss.
    assert nodes_surviving_losses(10, 3, 1) == 15
    assert capacity_after_losses({"a": 5, "b": 5, "c": 5}, 1) == 10
    assert nodes_surviving_losses(10, 3, 0) == 10
    with pytest.raises(SpecError):
        nodes_surviving_losses(10, 2, 2)


@dataclass(frozen=True)
class _Site:
    name: str
    cloud: str
    zones: tuple[str, ...]


def test_the_zone_margin_counts_the_fewest_zones_of_a_site_on_a_candidate_cloud() -> None:
    aws = _Site("aws-use1", "aws", ("a", "b", "c"))
    gcp = _Site("gcp-usc1", "gcp", ("a", "b"))
    one_zone = _Site("hall", "gcp", ("a",))
    # on both clouds: the GCP site's 2 zones, wherever the placement then puts the nodes
    assert zone_margin_sites([aws, gcp, one_zone], {"aws", "gcp"}, 1) == ([aws, gcp], 2)
    # no candidate type on GCP: its sites do not count
    assert zone_margin_sites([aws, gcp, one_zone], {"aws"}, 1) == ([aws], 3)
    assert zone_margin_sites([aws, gcp, one_zone], {"aws", "gcp"}, 0) == ([aws, gcp, one_zone], 1)
    with pytest.raises(SpecError) as exc:
        zone_margin_sites([aws, gcp], {"gcp"}, 2, "fleet.inference[0].survive_zone_losses")
    [issue] = exc.value.issues
    assert (issue.loc, issue.message) == ("fleet.inference[0].survive_zone_losses",
                                          "no allowed site has more than 2 zones")


def test_losing_every_domain_leaves_nothing() -> None:
    # The pack's zone/site-loss rules and the runway rely on this: losing as many domains as there
    # are (or more) leaves no capacity, not an error.
    assert capacity_after_losses({"a": 5, "b": 3}, 2) == 0
    assert capacity_after_losses({"a": 5, "b": 3}, 3) == 0
    assert capacity_after_losses({"a": 5, "b": 3}, 1) == 3


def test_weighted_nodes_lose_their_heaviest_domains() -> None:
    # Spot nodes count what a reclaim leaves of them (0.5 here): the heaviest domain is the one that fails,
    # whichever holds more nodes; the fewer of the zone and the site outcome is kept.
    by_zone = {"east/a": 4 + 0.5 * 6, "east/b": 6.0, "west/a": 2.0}
    by_domain = {"east": 13.0, "west": 2.0}
    assert capacity_after_losses(by_zone, 1) == 8.0  # east/a (7.0) fails before east/b (6.0)
    assert left_after_losses(by_zone, by_domain, zone_losses=1, site_losses=0) == 8.0
    assert left_after_losses(by_zone, by_domain, zone_losses=1, site_losses=1) == 2.0
    assert left_after_losses(by_zone, by_domain, zone_losses=0, site_losses=0) == 15.0


def test_zones_named_alike_at_two_sites_are_two_failure_domains() -> None:
    pools = [("east", None, {"a": 4, "b": 4}, 8), ("west", None, {"a": 4, "b": 4}, 8)]
    by_zone, by_domain = loss_domains(pools)
    assert by_zone == {"east/a": 4, "east/b": 4, "west/a": 4, "west/b": 4}  # not {"a": 8, "b": 8}
    assert nodes_after_losses(pools, zone_losses=1, site_losses=0) == 12  # one zone of one site, not both
    assert nodes_after_losses(pools, zone_losses=0, site_losses=1) == 8


def test_a_failure_domain_named_like_a_site_is_not_that_site() -> None:
    # "east" has no failure_domain; "east-2" declares failure_domain "east": two domains, as the placement sees them
    pools = [("east", None, {"a": 6}, 6), ("east-2", "east", {"a": 6}, 6), ("east-3", "east", {"a": 4}, 4)]
    _, by_domain = loss_domains(pools)
    assert by_domain == {"east": 6, "failure domain east": 10}
    assert nodes_after_losses(pools, zone_losses=0, site_losses=1) == 6  # the larger domain, east-2 + east-3, lost
    assert nodes_after_losses(pools, zone_losses=1, site_losses=1) == 6
    assert nodes_after_losses(pools, zone_losses=0, site_losses=0) == 16


@settings(max_examples=200, deadline=None)
@given(
    flops=st.floats(min_value=1e18, max_value=1e26),
    more=st.floats(min_value=1.0, max_value=100.0),
    days=st.floats(min_value=0.5, max_value=365),
    mfu=st.floats(min_value=0.05, max_value=1.0),
)
def test_more_training_compute_never_yields_fewer_gpus(flops: float, more: float, days: float, mfu: float) -> None:
    base = size_training(flops=flops, gpu=PETA_GPU, gpus_per_node=8, deadline_days=days, mfu=mfu)
    bigger = size_training(flops=flops * more, gpu=PETA_GPU, gpus_per_node=8, deadline_days=days, mfu=mfu)
    assert bigger.gpus >= base.gpus


@settings(max_examples=200, deadline=None)
@given(
    flops=st.floats(min_value=1e18, max_value=1e26),
    days=st.floats(min_value=0.5, max_value=365),
    longer=st.floats(min_value=1.0, max_value=10.0),
    mfu=st.floats(min_value=0.05, max_value=1.0),
)
def test_longer_deadline_never_yields_more_gpus(flops: float, days: float, longer: float, mfu: float) -> None:
    base = size_training(flops=flops, gpu=PETA_GPU, gpus_per_node=8, deadline_days=days, mfu=mfu)
    relaxed = size_training(flops=flops, gpu=PETA_GPU, gpus_per_node=8, deadline_days=days * longer, mfu=mfu)
    assert relaxed.gpus <= base.gpus


@settings(max_examples=200, deadline=None)
@given(
    peak=st.floats(min_value=1.0, max_value=1e8),
    more=st.floats(min_value=1.0, max_value=50.0),
    growth=st.floats(min_value=0.0, max_value=0.5),
    lead=st.floats(min_value=0, max_value=365),
    horizon=st.floats(min_value=1, max_value=730),
    tps=st.floats(min_value=10, max_value=1e5),
    gpus_per_replica=st.sampled_from([1, 2, 4, 8, 16]),
)
def test_more_inference_demand_never_yields_fewer_nodes(peak: float, more: float, growth: float, lead: float,
                                                        horizon: float, tps: float, gpus_per_replica: int) -> None:
    fit = fit_memory(params=1e9 * gpus_per_replica * 30, layers=32, kv_heads=8, head_dim=128, dtype="bf16",
                     context_tokens=1024, concurrency=1, gpu_memory_gib=80, gpus_per_node=8)
    kwargs = dict(memory=fit, gpus_per_node=8, tokens_per_s_per_replica=tps, growth_per_month=growth,
                  lead_time_days=lead, horizon_days=horizon, headroom=0.2, boot_minutes=10,
                  demand_ramp_per_minute=0.02)
    base = size_inference(peak_tokens_per_s=peak, **kwargs)  # type: ignore[arg-type]
    bigger = size_inference(peak_tokens_per_s=peak * more, **kwargs)  # type: ignore[arg-type]
    assert bigger.nodes >= base.nodes
    assert math.isfinite(bigger.demand_at_horizon_tokens_per_s)


_LOSS_POOLS = st.lists(st.tuples(st.sampled_from(["east", "west", "north"]), st.sampled_from([None, "east", "dc1"]),
                                 st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 20), min_size=1)),
                       min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(pools=_LOSS_POOLS, zone_losses=st.integers(0, 4), site_losses=st.integers(0, 4))
def test_more_losses_never_leave_more_nodes_and_more_nodes_never_fewer(
        pools: list[tuple[str, str | None, dict[str, int]]], zone_losses: int, site_losses: int) -> None:
    groups = [(site, fd, zones, sum(zones.values())) for site, fd, zones in pools]
    left = nodes_after_losses(groups, zone_losses=zone_losses, site_losses=site_losses)
    assert 0 <= left <= sum(g[3] for g in groups)
    assert nodes_after_losses(groups, zone_losses=zone_losses + 1, site_losses=site_losses) <= left
    assert nodes_after_losses(groups, zone_losses=zone_losses, site_losses=site_losses + 1) <= left
    site, fd, zones, nodes = groups[0]
    grown = [(site, fd, {**zones, "a": zones.get("a", 0) + 1}, nodes + 1), *groups[1:]]
    assert nodes_after_losses(grown, zone_losses=zone_losses, site_losses=site_losses) >= left
