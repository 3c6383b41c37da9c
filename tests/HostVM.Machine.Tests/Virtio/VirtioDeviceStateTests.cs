using System.Buffers.Binary;
using System.Collections.Concurrent;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// The smaller virtio devices' state (console input, balloon target and statistics buffer, input events
/// and selector, rng) round-trips under random requests and host actions.
/// </summary>
public sealed class VirtioDeviceStateTests
{
    private static Action? Console(RequestTraffic t)
    {
        var r = t.Random;
        var d = t.Driver;
        switch (r.Next(3))
        {
            case 0 when d.Queue(1).FreeDescriptors > 0:
                var text = d.Buffer((uint)r.Next(1, 64));
                r.NextBytes(d.Ram.GetSpan(text.Address, (int)text.Length));
                d.Queue(1).Add([text], []);
                return t.Kick(1);
            case 1 when d.Queue(0).FreeDescriptors > 0:
                d.Queue(0).Add([], [d.Buffer((uint)r.Next(1, 32))]);
                return r.Next(3) != 0 ? t.Kick(0) : null;
            default:
                var input = new byte[r.Next(1, 40)];
                r.NextBytes(input);
                return t.Host(device => ((VirtioConsole)device).SendInput(input));
        }
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 3)]
    public void Console_input_and_output_round_trip(bool legacy, int seed)
    {
        var outputs = new[] { new ConcurrentQueue<string>(), new ConcurrentQueue<string>() };
        int made = 0;
        using var twin = new StateTwin(() => { var o = outputs[made++]; return new VirtioConsole(m => o.Enqueue(Convert.ToHexString(m.Span))); }, legacy);
        int before = -1;
        twin.AssertBackendsSame = step =>
        {
            before = before < 0 ? outputs[0].Count - outputs[1].Count : before;
            Assert.True(outputs[0].Skip(before).SequenceEqual(outputs[1]), $"{step}: the console output differs");
        };
        new RequestTraffic(twin, seed).Run(40, Console);
    }

    private static Action? Balloon(RequestTraffic t)
    {
        var r = t.Random;
        var d = t.Driver;
        switch (r.Next(5))
        {
            case 0 when d.Queue(0).FreeDescriptors > 0:
                var pfns = d.Buffer(16);
                for (int i = 0; i < 4; i++)
                {
                    ulong page = (d.Ram.BaseAddress >> 12) + 512 + (ulong)r.Next(256);
                    BinaryPrimitives.WriteUInt32LittleEndian(d.Ram.GetSpan(pfns.Address + (ulong)(4 * i), 4), (uint)page);
                }

                d.Queue(r.Next(2)).Add([pfns], []);
                return t.Kick(r.Next(2));
            case 1 when d.Queue(2).FreeDescriptors > 0:
                var stats = d.Buffer(20);
                BinaryPrimitives.WriteUInt16LittleEndian(d.Ram.GetSpan(stats.Address, 2), 4);
                BinaryPrimitives.WriteUInt64LittleEndian(d.Ram.GetSpan(stats.Address + 2, 8), (ulong)r.NextInt64());
                d.Queue(2).Add([stats], []);
                return t.Kick(2);
            case 2:
                ulong target = (ulong)r.Next(1000) << 12;
                return t.Host(device => ((VirtioBalloon)device).SetTarget(target));
            case 3:
                return t.Host(device => ((VirtioBalloon)device).RequestStatistics());
            default:
                uint actual = (uint)r.Next(1000);
                return () =>
                {
                    if (t.Mirrored)
                    {
                        t.Host(device => device.WriteConfig(4, BitConverter.GetBytes(actual)))();
                    }
                    else
                    {
                        d.WriteConfig(4, 4, actual);
                    }
                };
        }
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 3)]
    public void Balloon_round_trips(bool legacy, int seed)
    {
        using var twin = new StateTwin(() => new VirtioBalloon(), legacy);
        new RequestTraffic(twin, seed).Run(40, Balloon);
    }

    private static Action? Input(RequestTraffic t)
    {
        var r = t.Random;
        var d = t.Driver;
        switch (r.Next(4))
        {
            case 0 when d.Queue(0).FreeDescriptors > 0:
                d.Queue(0).Add([], [d.Buffer(r.Next(4) == 0 ? 4u : 8u)]);
                return r.Next(3) != 0 ? t.Kick(0) : null;
            case 1 when d.Queue(1).FreeDescriptors > 0:
                d.Queue(1).Add([d.Buffer(8)], []);
                return t.Kick(1);
            case 2:
                return t.Host(device => ((VirtioInput)device).PressPowerButton());
            default:
                byte select = (byte)r.Next(4), subsel = (byte)r.Next(2);
                return t.Host(device => device.WriteConfig(0, [select, subsel]));
        }
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 3)]
    public void Input_round_trips(bool legacy, int seed)
    {
        using var twin = new StateTwin(() => new VirtioInput(), legacy);
        new RequestTraffic(twin, seed).Run(40, Input);
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 2)]
    public void Rng_round_trips(bool legacy, int seed)
    {
        using var twin = new StateTwin(() => new VirtioRng(), legacy);
        new RequestTraffic(twin, seed).Run(40, t =>
        {
            if (t.Driver.Queue(0).FreeDescriptors == 0)
            {
                return t.Kick(0);
            }

            var buffer = t.Driver.Buffer((uint)t.Random.Next(1, 64));
            twin.Unpredictable.Add(buffer); // random bytes: only their lengths must agree
            t.Driver.Queue(0).Add([], [buffer]);
            return t.Random.Next(3) != 0 ? t.Kick(0) : null;
        });
    }
}
