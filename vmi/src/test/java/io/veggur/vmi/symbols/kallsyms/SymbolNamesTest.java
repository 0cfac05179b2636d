package io.veggur.vmi.symbols.kallsyms;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(10)
class SymbolNamesTest {
    @Test
    void first_findsTheFirstOccurrence_ofDuplicatedNames() {
        SymbolNames names = names("Aa", "BB", "Aa", "schedule", "BB", "AaBB", "BBAa");

        assertThat(names.count()).isEqualTo(7);
        assertThat(names.first("Aa")).isZero();
        assertThat(names.first("BB")).isEqualTo(1);
        assertThat(names.first("schedule")).isEqualTo(3);
        assertThat(names.first("AaBB")).isEqualTo(5);
        assertThat(names.first("BBAa")).isEqualTo(6);
        assertThat(names.name(4)).isEqualTo("BB");
    }

    @Test
    void first_ofUnknownOrNonLatin1Names_isMinusOne() {
        SymbolNames names = names("init_task", "é");

        assertThat(names.first("init_tas")).isEqualTo(-1);
        assertThat(names.first("")).isEqualTo(-1);
        assertThat(names.first("init_task\u0100")).isEqualTo(-1);
        assertThat(names.first("é")).isEqualTo(1);
    }

    @Test
    void index_ofManyNamesThatCollideInStringHashCode_staysFast() {
        // Every string of "Aa"/"BB" blocks has the same String.hashCode; the seeded hash spreads them.
        String[] names = new String[1 << 16];
        for (int i = 0; i < names.length; i++) {
            StringBuilder name = new StringBuilder();
            for (int bit = 0; bit < 16; bit++) {
                name.append((i >> bit & 1) == 0 ? "Aa" : "BB");
            }
            names[i] = name.toString();
        }
        SymbolNames index = names(names);

        for (int i = 0; i < names.length; i += 997) {
            assertThat(index.first(names[i])).isEqualTo(i);
        }
    }

    @Test
    void builder_refusesNamesBeyondItsByteLimit() {
        SymbolNames.Builder builder = new SymbolNames.Builder(2, 1, 4);
        for (byte b : "abcd".getBytes(StandardCharsets.US_ASCII)) {
            assertThat(builder.append(b)).isTrue();
        }
        assertThat(builder.append((byte) 'e')).isFalse();
    }

    private static SymbolNames names(String... names) {
        SymbolNames.Builder builder = new SymbolNames.Builder(names.length, 8, 64 << 20);
        for (String name : names) {
            for (byte b : name.getBytes(StandardCharsets.ISO_8859_1)) {
                assertThat(builder.append(b)).isTrue();
            }
            builder.endName();
        }
        return builder.build();
    }
}
