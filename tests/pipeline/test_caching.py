from streams.pipeline.caching import remember


def test_a_full_cache_drops_its_oldest_half_and_keeps_the_newest() -> None:
    cache: dict[int, str] = {}
    for n in range(10):
        remember(cache, n, str(n), limit=10)
    remember(cache, 10, "10", limit=10)
    assert list(cache) == [6, 7, 8, 9, 10]


def test_a_known_key_is_replaced_without_eviction() -> None:
    cache = {n: n for n in range(4)}
    remember(cache, 0, 99, limit=4)
    assert cache == {0: 99, 1: 1, 2: 2, 3: 3}
