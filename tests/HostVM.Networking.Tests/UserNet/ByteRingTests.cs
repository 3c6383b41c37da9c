using HostVM.Networking.UserNet;

namespace HostVM.Networking.Tests.UserNet;

public class ByteRingTests
{
    [Fact]
    public void DataSurvivesWrappingThroughEveryPath()
    {
        var ring = new ByteRing(100);
        var random = new Random(9);
        var expected = new Queue<byte>();
        byte next = 0;
        for (int step = 0; step < 5000; step++)
        {
            switch (random.Next(4))
            {
                case 0:
                    var chunk = new byte[random.Next(0, ring.Free + 1)];
                    for (int i = 0; i < chunk.Length; i++)
                    {
                        chunk[i] = next++;
                        expected.Enqueue(chunk[i]);
                    }

                    ring.Write(chunk);
                    break;
                case 1:
                    var region = ring.WritableRegion();
                    Assert.True(region.Length <= ring.Free);
                    Assert.True(ring.Free == 0 || region.Length > 0);
                    int fill = random.Next(0, region.Length + 1);
                    for (int i = 0; i < fill; i++)
                    {
                        region.Span[i] = next;
                        expected.Enqueue(next++);
                    }

                    ring.Commit(fill);
                    break;
                case 2:
                    int offset = random.Next(0, ring.Count + 1);
                    var peeked = new byte[random.Next(0, ring.Count - offset + 1)];
                    ring.Peek(offset, peeked);
                    Assert.Equal(expected.Skip(offset).Take(peeked.Length), peeked);
                    break;
                default:
                    var readable = ring.ReadableRegion();
                    Assert.True(ring.Count == 0 || readable.Length > 0);
                    Assert.Equal(expected.Take(readable.Length), readable.ToArray());
                    int consume = random.Next(0, ring.Count + 1);
                    for (int i = 0; i < consume; i++)
                    {
                        expected.Dequeue();
                    }

                    ring.Consume(consume);
                    break;
            }

            Assert.Equal(expected.Count, ring.Count);
        }
    }
}
