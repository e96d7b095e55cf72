import kafkajs from 'kafkajs';

/** The partition kafkajs's default partitioner (an independent implementation of Kafka's rule) gives `key`. */
export function kafkajsPartition(key: string, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 1,
    partitionErrorCode: 0,
    replicas: [1],
    isr: [1],
  }));
  return partitioner({ topic: 't', partitionMetadata, message: { key, value: null } });
}

const partitioner = kafkajs.Partitioners.DefaultPartitioner();
