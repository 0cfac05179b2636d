package io.veggur.vmi.paging;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TranslationCacheTest {
    private static final long ROOT = 0x10_0000;
    private static final long VA = 0x7F00_0000_0000L;
    private static final long VALUE_4K = 0x30_5000L | 1 << 3;

    private final TranslationCache cache = new TranslationCache(16);

    @Test
    void lookup_afterInsert_returnsValueForEveryAddressInThePage() {
        cache.insert(ROOT, VA, 2, 0x60_0000L | 2 << 3, cache.epoch());

        assertThat(cache.lookup(ROOT, VA)).isEqualTo(0x60_0000L | 2 << 3);
        assertThat(cache.lookup(ROOT, VA + 0x1F_FFFF)).isEqualTo(0x60_0000L | 2 << 3);
        assertThat(cache.lookup(ROOT, VA + 0x20_0000)).isZero();
        assertThat(cache.lookup(ROOT + 0x1000, VA)).isZero();
    }

    @Test
    void insert_moreEntriesThanCapacity_sizeNeverExceedsCapacity() {
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < 100 * cache.capacity(); i++) {
            int level = 1 + random.nextInt(3);
            cache.insert(random.nextLong() & PageTableWalker.ADDRESS_MASK, random.nextLong(), level,
                    VALUE_4K, cache.epoch());
            assertThat(cache.size()).isLessThanOrEqualTo(cache.capacity());
        }
        assertThat(cache.capacity()).isEqualTo(48);
        assertThat(cache.size()).isGreaterThan(cache.capacity() / 2);
    }

    @Test
    void invalidate_thenLookup_misses() {
        cache.insert(ROOT, VA, 1, VALUE_4K, cache.epoch());

        cache.invalidate();

        assertThat(cache.lookup(ROOT, VA)).isZero();
        assertThat(cache.size()).isZero();
    }

    @Test
    void invalidate_generationWrapsAround_retiredEntriesStayRetired() {
        cache.insert(ROOT, VA, 1, VALUE_4K, cache.epoch());

        for (int i = 0; i < 3 * 4095 + 7; i++) {
            cache.invalidate();
            assertThat(cache.lookup(ROOT, VA)).isZero();
        }
        cache.insert(ROOT, VA + 0x1000, 1, VALUE_4K, cache.epoch());
        assertThat(cache.lookup(ROOT, VA + 0x1000)).isEqualTo(VALUE_4K);
        assertThat(cache.size()).isEqualTo(1);
    }

    @Test
    void insert_walkStartedBeforeInvalidate_isDropped() {
        long epochBeforeWalk = cache.epoch();
        cache.invalidate(ROOT + 0x5000);

        cache.insert(ROOT, VA, 1, VALUE_4K, epochBeforeWalk);

        assertThat(cache.lookup(ROOT, VA)).isZero();
    }

    @Test
    void invalidateRoot_otherRootsKeepTheirEntries() {
        cache.insert(ROOT, VA, 1, VALUE_4K, cache.epoch());
        cache.insert(ROOT + 0x1000, VA, 1, VALUE_4K + 0x1000, cache.epoch());

        cache.invalidate(ROOT);

        assertThat(cache.lookup(ROOT, VA)).isZero();
        assertThat(cache.lookup(ROOT + 0x1000, VA)).isEqualTo(VALUE_4K + 0x1000);
    }

    @Test
    void constructor_slotsNotAPowerOfTwo_throws() {
        assertThatThrownBy(() -> new TranslationCache(12)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new TranslationCache(0)).isInstanceOf(IllegalArgumentException.class);
    }
}
