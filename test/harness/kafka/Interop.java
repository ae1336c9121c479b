// The other side of the Kafka interop tests: Apache Kafka's own Java client (the jars the harness resolves), run as
// a single-file program (`java -cp 'jars/*' Interop.java ...`). Records travel as tab-separated lines of hex, so
// every byte is visible: null is `~`; a key `long:N` is written with Kafka's LongSerializer.
//
//   produce BOOTSTRAP TOPIC          < lines "partition<TAB>key<TAB>value<TAB>timestamp<TAB>name=hex..." (partition ~: the
//                                     Java client's default partitioner); prints "partition<TAB>offset" per record
//   consume BOOTSTRAP TOPIC[,TOPIC] COUNT TIMEOUT_MS
//                                     prints "topic<TAB>partition<TAB>offset<TAB>timestamp<TAB>key<TAB>value<TAB>long<TAB>name=hex..."
//                                     (read_committed, from the earliest offset; `long` is LongDeserializer's reading of an 8-byte key, else ~)
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.LongSerializer;

public class Interop {
	static final HexFormat HEX = HexFormat.of();

	static byte[] bytes(String topic, String s) {
		if (s.equals("~")) return null;
		if (s.startsWith("long:")) return new LongSerializer().serialize(topic, Long.parseLong(s.substring(5)));
		return HEX.parseHex(s);
	}

	static String hex(byte[] b) {
		return b == null ? "~" : HEX.formatHex(b);
	}

	public static void main(String[] args) throws Exception {
		switch (args[0]) {
			case "produce" -> produce(args[1], args[2]);
			case "consume" -> consume(args[1], args[2], Integer.parseInt(args[3]), Long.parseLong(args[4]));
			default -> throw new IllegalArgumentException("unknown command " + args[0]);
		}
	}

	static void produce(String bootstrap, String topic) throws Exception {
		Properties p = new Properties();
		p.put("bootstrap.servers", bootstrap);
		p.put("acks", "all");
		p.put("key.serializer", ByteArraySerializer.class.getName());
		p.put("value.serializer", ByteArraySerializer.class.getName());
		List<Future<RecordMetadata>> sent = new ArrayList<>();
		try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
			BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
			for (String line; (line = in.readLine()) != null; ) {
				if (line.isEmpty()) continue;
				String[] f = line.split("\t", -1);
				RecordHeaders headers = new RecordHeaders();
				for (int i = 4; i < f.length; i++) {
					int eq = f[i].indexOf('=');
					headers.add(f[i].substring(0, eq), bytes(topic, f[i].substring(eq + 1)));
				}
				Integer partition = f[0].equals("~") ? null : Integer.parseInt(f[0]);
				Long ts = f[3].equals("~") ? null : Long.parseLong(f[3]);
				sent.add(producer.send(new ProducerRecord<>(topic, partition, ts, bytes(topic, f[1]), bytes(topic, f[2]), headers)));
			}
			producer.flush();
			for (Future<RecordMetadata> f : sent) {
				RecordMetadata m = f.get();
				System.out.println(m.partition() + "\t" + m.offset());
			}
		}
	}

	static void consume(String bootstrap, String topics, int count, long timeoutMs) {
		Properties p = new Properties();
		p.put("bootstrap.servers", bootstrap);
		p.put("group.id", "interop-" + UUID.randomUUID());
		p.put("auto.offset.reset", "earliest");
		p.put("enable.auto.commit", "false");
		p.put("isolation.level", "read_committed");
		p.put("key.deserializer", ByteArrayDeserializer.class.getName());
		p.put("value.deserializer", ByteArrayDeserializer.class.getName());
		LongDeserializer longs = new LongDeserializer();
		int seen = 0;
		long deadline = System.currentTimeMillis() + timeoutMs;
		try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
			consumer.subscribe(Arrays.asList(topics.split(",")));
			while (seen < count && System.currentTimeMillis() < deadline) {
				for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
					StringBuilder b = new StringBuilder();
					b.append(r.topic()).append('\t').append(r.partition()).append('\t').append(r.offset());
					b.append('\t').append(r.timestamp()).append('\t').append(hex(r.key())).append('\t').append(hex(r.value()));
					b.append('\t').append(r.key() != null && r.key().length == 8 ? String.valueOf(longs.deserialize(r.topic(), r.key())) : "~");
					for (Header h : r.headers()) b.append('\t').append(h.key()).append('=').append(hex(h.value()));
					System.out.println(b);
					seen++;
				}
			}
		}
		System.out.flush();
	}
}
