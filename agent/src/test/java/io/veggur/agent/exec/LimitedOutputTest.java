package io.veggur.agent.exec;

import static java.nio.charset.StandardCharsets.US_ASCII;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import org.junit.jupiter.api.Test;

class LimitedOutputTest {
    @Test
    void eachStream_keepsItsFirstLimitBytes_andSaysItDroppedTheRest() throws IOException {
        CapturedOutput captured = new CapturedOutput();
        LimitedOutput limited = new LimitedOutput(captured, 5);

        limited.write(ExecStream.STDOUT, bytes("abc"), 0, 3);
        limited.write(ExecStream.STDERR, bytes("xyz"), 0, 3);
        assertThat(limited.truncated()).isFalse();
        limited.write(ExecStream.STDOUT, bytes("--defgh--"), 2, 5);
        limited.write(ExecStream.STDOUT, bytes("ijk"), 0, 3);

        assertThat(new String(captured.stdout(), US_ASCII)).isEqualTo("abcde");
        assertThat(new String(captured.stderr(), US_ASCII)).isEqualTo("xyz");
        assertThat(limited.truncated()).isTrue();
    }

    @Test
    void exactlyTheLimit_isNotTruncated() throws IOException {
        CapturedOutput captured = new CapturedOutput();
        LimitedOutput limited = new LimitedOutput(captured, 3);

        limited.write(ExecStream.STDERR, bytes("abc"), 0, 3);
        limited.write(ExecStream.STDERR, bytes(""), 0, 0);

        assertThat(captured.stderr()).hasSize(3);
        assertThat(limited.truncated()).isFalse();
    }

    @Test
    void aFailingReader_failsTheWrite() {
        LimitedOutput limited = new LimitedOutput((stream, bytes, offset, length) -> {
            throw new IOException("gone");
        }, 10);

        assertThatThrownBy(() -> limited.write(ExecStream.STDOUT, bytes("a"), 0, 1)).hasMessage("gone");
        assertThatThrownBy(() -> new LimitedOutput(new CapturedOutput(), -1)).isInstanceOf(IllegalArgumentException.class);
    }

    private static byte[] bytes(String text) {
        return text.getBytes(US_ASCII);
    }
}
