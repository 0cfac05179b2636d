package io.veggur.vmi.paging;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class PagingModeTest {
    @Test
    void fromCr4_la57Clear_fourLevel() {
        assertThat(PagingMode.fromCr4(0x3506f0L)).isEqualTo(PagingMode.FOUR_LEVEL);
    }

    @Test
    void fromCr4_la57Set_fiveLevel() {
        assertThat(PagingMode.fromCr4(0x3506f0L | 1L << 12)).isEqualTo(PagingMode.FIVE_LEVEL);
    }

    @Test
    void levelsAndBits_eachMode_matchTheSdm() {
        assertThat(PagingMode.FOUR_LEVEL.levels()).isEqualTo(4);
        assertThat(PagingMode.FOUR_LEVEL.virtualAddressBits()).isEqualTo(48);
        assertThat(PagingMode.FIVE_LEVEL.levels()).isEqualTo(5);
        assertThat(PagingMode.FIVE_LEVEL.virtualAddressBits()).isEqualTo(57);
    }

    @Test
    void isCanonical_fourLevel_signExtendsBit47() {
        PagingMode mode = PagingMode.FOUR_LEVEL;

        assertThat(mode.isCanonical(0L)).isTrue();
        assertThat(mode.isCanonical(0x0000_7FFF_FFFF_FFFFL)).isTrue();
        assertThat(mode.isCanonical(0xFFFF_8000_0000_0000L)).isTrue();
        assertThat(mode.isCanonical(-1L)).isTrue();
        assertThat(mode.isCanonical(0x0000_8000_0000_0000L)).isFalse();
        assertThat(mode.isCanonical(0xFFFF_7FFF_FFFF_FFFFL)).isFalse();
        assertThat(mode.isCanonical(0xFF00_0000_0000_0000L)).isFalse();
    }

    @Test
    void isCanonical_fiveLevel_signExtendsBit56() {
        PagingMode mode = PagingMode.FIVE_LEVEL;

        assertThat(mode.isCanonical(0x0000_8000_0000_0000L)).isTrue();
        assertThat(mode.isCanonical(0x00FF_FFFF_FFFF_FFFFL)).isTrue();
        assertThat(mode.isCanonical(0xFF00_0000_0000_0000L)).isTrue();
        assertThat(mode.isCanonical(0x0100_0000_0000_0000L)).isFalse();
        assertThat(mode.isCanonical(0xFEFF_FFFF_FFFF_FFFFL)).isFalse();
        assertThat(mode.isCanonical(0x8000_0000_0000_0000L)).isFalse();
    }
}
