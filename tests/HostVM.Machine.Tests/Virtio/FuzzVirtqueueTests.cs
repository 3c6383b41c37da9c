using System.Buffers.Binary;
using HostVM.Machine.Memory;
using HostVM.Machine.Virtio;
using static HostVM.Machine.Virtio.Virtqueue;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// Property test of the ring walker alone: whatever the guest leaves in the descriptor table, the
/// indirect tables and the available ring, <see cref="Virtqueue.TryPop"/> either hands out a chain
/// whose every segment lies in guest RAM, readable ones first, with lengths that add up, or throws
/// <see cref="VirtqueueException"/>; never another exception, never an endless walk.
/// </summary>
public sealed class FuzzVirtqueueTests : IDisposable
{
    private const ulong RamSize = 1 << 20;
    private const ulong Base = GuestRam.DefaultBase;
    private const ulong Desc = Base, Avail = Base + 0x1000, Used = Base + 0x2000;
    private const ulong Tables = Base + 0x4000;   // indirect tables: 0x4000 .. 0x14000
    private const ulong Data = Base + 0x20000;    // where well-formed buffers point
    private const int Iterations = 6000;

    private readonly GuestRam _ram = new(RamSize);
    private readonly GuestMemory _memory;

    public FuzzVirtqueueTests() => _memory = new GuestMemory(_ram, null);

    public void Dispose() => _ram.Dispose();

    [Theory]
    [InlineData(0x5eed_0001)]
    [InlineData(0x5eed_0002)]
    public void Random_rings_pop_checked_chains_or_throw_VirtqueueException(int seed)
    {
        int popped = 0, rejected = 0, segments = 0;
        string where = "not started";
        FuzzWatchdog.Run(
            () =>
            {
                var r = new Random(seed);
                var chain = new DescriptorChain();
                for (int i = 0; i < Iterations; i++)
                {
                    ushort size = (ushort)(1 << r.Next(0, 9)); // 1 .. 256
                    FillRings(r, size);
                    var q = Virtqueue.Create(_memory, size, Desc, Avail, Used, eventIndex: r.Next(2) == 0);
                    for (int pop = 0; pop < 8; pop++)
                    {
                        where = $"seed 0x{seed:x}, iteration {i}, pop {pop}, queue size {size}";
                        bool got;
                        try
                        {
                            got = q.TryPop(chain);
                        }
                        catch (VirtqueueException)
                        {
                            rejected++;
                            break; // the device stops serving a queue that broke the rules
                        }
                        catch (Exception e)
                        {
                            Assert.Fail($"{where}: TryPop threw {e}");
                            return;
                        }

                        if (!got)
                        {
                            break;
                        }

                        popped++;
                        segments += chain.Count;
                        CheckChain(chain, size, where);
                        q.Push(chain.Head, 0);
                    }
                }
            },
            TimeSpan.FromSeconds(30),
            () => where);

        // Both outcomes must actually happen, or the generator tests nothing.
        Assert.True(popped > Iterations / 10, $"only {popped} chains were accepted (seed 0x{seed:x})");
        Assert.True(rejected > Iterations / 10, $"only {rejected} rings were rejected (seed 0x{seed:x})");
        Assert.True(segments > popped, $"accepted chains held only {segments} segments (seed 0x{seed:x})");
    }

    private void CheckChain(DescriptorChain chain, ushort size, string where)
    {
        Assert.True(chain.Head < size, $"{where}: head {chain.Head} outside the queue");
        Assert.True(chain.Count <= size + MaxIndirectDescriptors, $"{where}: {chain.Count} segments");
        ulong readable = 0, writable = 0;
        bool sawWritable = false;
        for (int i = 0; i < chain.Count; i++)
        {
            var s = chain.Segments[i];
            Assert.True(s.Length > 0, $"{where}: segment {i} is empty");
            Assert.True(_ram.Contains(s.Address, s.Length), $"{where}: segment {i} 0x{s.Address:x}+0x{s.Length:x} is outside RAM");
            Assert.False(!s.Writable && sawWritable, $"{where}: segment {i} is readable after a writable one");
            sawWritable |= s.Writable;
            if (s.Writable)
            {
                writable += s.Length;
            }
            else
            {
                readable += s.Length;
            }
        }

        Assert.True(readable == chain.ReadableLength, $"{where}: readable length {chain.ReadableLength}, segments add up to {readable}");
        Assert.True(writable == chain.WritableLength, $"{where}: writable length {chain.WritableLength}, segments add up to {writable}");
        Assert.True(chain.ReadableCount == chain.ReadableSegments.Length && chain.ReadableSegments.ToArray().All(s => !s.Writable), $"{where}: ReadableCount {chain.ReadableCount} is wrong");
    }

    /// <summary>Random descriptors (some well formed, most not), random indirect tables, a random avail ring.</summary>
    private void FillRings(Random r, ushort size)
    {
        bool tidy = r.Next(3) == 0; // a third of the rounds keep most fields plausible, so chains get through
        for (int i = 0; i < size; i++)
        {
            WriteDescriptor(r, Desc + (16UL * (ulong)i), size, tidy, indirectAllowed: true);
        }

        for (int t = 0; t < 4; t++)
        {
            int count = r.Next(1, 64);
            for (int i = 0; i < count; i++)
            {
                WriteDescriptor(r, Tables + ((ulong)t * 0x4000) + (16UL * (ulong)i), (ushort)count, tidy, indirectAllowed: r.Next(20) == 0);
            }
        }

        var avail = _ram.GetSpan(Avail, 6 + (2 * size));
        BinaryPrimitives.WriteUInt16LittleEndian(avail, (ushort)r.Next(4)); // flags
        for (int i = 0; i < size + 1; i++) // ring heads, then used_event
        {
            BinaryPrimitives.WriteUInt16LittleEndian(avail[(4 + (2 * i))..], (ushort)(r.Next(4) == 0 ? r.Next(65536) : r.Next(size)));
        }

        ushort idx = (ushort)(r.Next(4) switch
        {
            0 => r.Next(65536),
            1 => size + r.Next(1, 4),
            _ => r.Next(0, size + 1),
        });
        BinaryPrimitives.WriteUInt16LittleEndian(avail[2..], idx);
    }

    private void WriteDescriptor(Random r, ulong at, ushort count, bool tidy, bool indirectAllowed)
    {
        ulong address;
        uint length;
        ushort flags, next;
        if (tidy && r.Next(8) != 0)
        {
            length = (uint)r.Next(0, 2048);
            address = Data + (ulong)r.Next(0, 0x1000) * 16;
            flags = (ushort)((r.Next(2) == 0 ? DescNext : 0) | (r.Next(2) == 0 ? DescWrite : 0));
            next = (ushort)r.Next(count);
        }
        else
        {
            (address, length) = RandomRange(r);
            flags = (ushort)(r.Next(6) == 0 ? r.Next(65536) : r.Next(8));
            next = (ushort)(r.Next(4) == 0 ? r.Next(65536) : r.Next(count));
        }

        if (indirectAllowed && r.Next(12) == 0)
        {
            // Point at one of the indirect tables, with a plausible or a broken length.
            address = Tables + ((ulong)r.Next(4) * 0x4000) + (r.Next(8) == 0 ? (ulong)r.Next(16) : 0);
            length = r.Next(4) switch
            {
                0 => (uint)r.Next(),
                1 => (uint)r.Next(0, 64) * 16 + (uint)r.Next(0, 16),
                _ => (uint)r.Next(1, 64) * 16,
            };
            flags = (ushort)(DescIndirect | (r.Next(5) == 0 ? DescNext : 0) | (r.Next(3) == 0 ? DescWrite : 0));
        }
        else if (!indirectAllowed)
        {
            flags = (ushort)(flags & ~DescIndirect | (r.Next(30) == 0 ? DescIndirect : 0));
        }

        DriverQueue.WriteDescriptorAt(_ram, at, address, length, flags, next);
    }

    /// <summary>An address and length from anywhere: inside RAM, across either edge, wrapping the 64-bit space, huge.</summary>
    internal static (ulong Address, uint Length) RandomRange(Random r)
    {
        uint length = r.Next(9) switch
        {
            0 => 0,
            1 => 1,
            2 => (uint)r.Next(1, 64),
            3 => ((uint)r.Next(1, 9) * 512) + (uint)r.Next(0, 2),
            4 => uint.MaxValue - (uint)r.Next(0, 16),
            5 => (uint)RamSize + (uint)r.Next(0, 3) - 1,
            6 => (uint)r.Next() | ((uint)r.Next(2) << 31),
            _ => (uint)r.Next(1, 8192),
        };
        ulong address = r.Next(8) switch
        {
            0 => (ulong)r.NextInt64() ^ ((ulong)r.Next(2) << 63),
            1 => Base - (ulong)r.Next(0, 8192),
            2 => Base + RamSize - (ulong)r.Next(0, 8192),
            3 => ulong.MaxValue - (ulong)r.Next(0, 8192),
            4 => (ulong)r.Next(0, 8192),
            _ => Base + (ulong)r.NextInt64(0, (long)RamSize),
        };
        return (address, length);
    }
}
