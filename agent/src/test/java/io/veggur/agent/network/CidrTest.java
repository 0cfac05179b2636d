package io.veggur.agent.network;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class CidrTest {
    @ParameterizedTest
    @CsvSource({
        "10.0.0.0/8,      10.255.1.2,    true",
        "10.0.0.0/8,      11.0.0.0,      false",
        "127.0.0.1/32,    127.0.0.1,     true",
        "127.0.0.1/32,    127.0.0.2,     false",
        "0.0.0.0/0,       192.0.2.7,     true",
        "192.168.4.0/22,  192.168.7.255, true",
        "192.168.4.0/22,  192.168.8.0,   false",
        "fd00::/64,       fd00::1:2,     true",
        "fd00::/64,       fd00:0:0:1::1, false",
        "::/0,            ::1,           true",
        "0.0.0.0/0,       ::1,           false",
        "::/0,            127.0.0.1,     false",
    })
    void contains_addressInOrOutOfBlock_answersByPrefixAndFamily(String block, String address, boolean inside) {
        assertThat(Cidr.parse(block).contains(InetAddress.ofLiteral(address))).isEqualTo(inside);
    }

    @ParameterizedTest
    @ValueSource(strings = {"10.0.0.0/8", "127.0.0.1/32", "fd00:0:0:0:0:0:0:0/64", "0:0:0:0:0:0:0:1/128"})
    void toString_canonicalForm_parsesBackToTheSameBlock(String text) {
        assertThat(Cidr.parse(text)).hasToString(text).isEqualTo(Cidr.parse(Cidr.parse(text).toString()));
    }

    @ParameterizedTest
    @ValueSource(strings = {"10.0.0.1", "10.0.0.1/24", "10.0.0.0/33", "fd00::1/129", "fd00::/-1", "localhost/32",
        "10.0.0/24", "10.0.0.0/", "/8", "fe80::1%1/128", "10.0.0.0/8/8", "10.0.0.256/32", "10.0.0.0/08x"})
    void parse_malformedBlock_isRefused(String text) {
        assertThatThrownBy(() -> Cidr.parse(text)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(text);
    }
}
