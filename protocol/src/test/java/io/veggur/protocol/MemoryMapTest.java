package io.veggur.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class MemoryMapTest {
    private final MemoryMap q35With5GiB = new MemoryMap(List.of(
            new MemoryRegion(4L << 30, 3L << 30, 2L << 30), new MemoryRegion(0, 2L << 30, 0)));

    @Test
    void backingOffset_aboveFourGiB_followsTheLowRegion() {
        assertThat(q35With5GiB.backingOffset((4L << 30) + 0x10, 8)).isEqualTo((2L << 30) + 0x10);
        assertThat(q35With5GiB.backingOffset(0x1000, 4096)).isEqualTo(0x1000);
        assertThat(q35With5GiB.backingSize()).isEqualTo(5L << 30);
    }

    @Test
    void backingOffset_rangeInTheHoleOrStraddling_isMinusOne() {
        assertThat(q35With5GiB.backingOffset(3L << 30, 8)).isEqualTo(-1);
        assertThat(q35With5GiB.backingOffset((2L << 30) - 4, 8)).isEqualTo(-1);
        assertThat(q35With5GiB.backingOffset(-8, 8)).isEqualTo(-1);
        assertThat(q35With5GiB.backingOffset(Long.MAX_VALUE - 2, 8)).isEqualTo(-1);
    }

    @Test
    void constructor_overlappingRegions_isRejected() {
        assertThatThrownBy(() -> new MemoryMap(List.of(new MemoryRegion(0, 0x2000, 0), new MemoryRegion(0x1000, 0x1000, 0x2000))))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
