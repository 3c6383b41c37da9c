using System.Collections.Concurrent;
using System.Collections.Immutable;

namespace HostVM.Machine.Virtio;

/// <summary>
/// virtio-console (Virtio 1.2 §5.3) with one port (no MULTIPORT): the guest's /dev/hvc0. What the guest
/// writes goes to <c>output</c> on the device's I/O thread; <see cref="SendInput"/> queues bytes for the
/// guest, delivered as it offers receive buffers.
/// </summary>
public sealed class VirtioConsole : VirtioDevice
{
    public const ushort QueueSize = 64;

    /// <summary>Input bytes held for the guest at most; beyond this <see cref="SendInput"/> accepts fewer.</summary>
    public const int InputBacklog = 64 * 1024;

    private const int ReceiveQueue = 0;
    private const int TransmitQueue = 1;

    private readonly Action<ReadOnlyMemory<byte>> _output;
    private readonly DeviceWorker _worker;
    private readonly Lock _sync = new();
    private readonly DescriptorChain _chain = new();
    private readonly ConcurrentQueue<byte[]> _input = new();
    private readonly byte[] _buffer = new byte[64 * 1024];
    private byte[]? _partial;
    private int _partialOffset;
    private int _inputBytes;
    private Virtqueue? _rx;
    private Virtqueue? _tx;

    public VirtioConsole(Action<ReadOnlyMemory<byte>> output)
        : base(VirtioDeviceType.Console, 2, QueueSize)
    {
        _output = output;
        _worker = new DeviceWorker("virtio-console", Process, e => Fail($"internal error: {e.Message}"));
    }

    public override ulong DeviceFeatures => 0;

    public override int ConfigSize => 12; // cols, rows, max_nr_ports, emerg_wr: unused without features

    public override void ReadConfig(Span<byte> config) => config.Clear();

    public override void Activate(VirtioActivation activation)
    {
        lock (_sync)
        {
            _rx = activation.Queues[ReceiveQueue];
            _tx = activation.Queues[TransmitQueue];
        }

        _worker.Signal();
    }

    public override void Reset()
    {
        lock (_sync)
        {
            _rx = null;
            _tx = null;
        }
    }

    public override void Notify(int queue) => _worker.Signal();

    /// <summary>Queues bytes for the guest to read from /dev/hvc0; returns how many were accepted.</summary>
    public int SendInput(ReadOnlySpan<byte> data)
    {
        int room = InputBacklog - Volatile.Read(ref _inputBytes);
        int n = Math.Clamp(data.Length, 0, Math.Max(0, room));
        if (n > 0)
        {
            Interlocked.Add(ref _inputBytes, n);
            _input.Enqueue(data[..n].ToArray());
            _worker.Signal();
        }

        return n;
    }

    private TimeSpan? Process()
    {
        lock (_sync)
        {
            try
            {
                if (_tx is { } tx)
                {
                    bool pushed = false;
                    do
                    {
                        while (tx.TryPop(_chain))
                        {
                            int n = _chain.Read(0, _buffer);
                            _output(_buffer.AsMemory(0, n).ToArray());
                            tx.Push(_chain.Head, 0);
                            pushed = true;
                        }
                    }
                    while (tx.ArmNotification()); // a request made while we armed sends no kick: serve it now

                    if (pushed)
                    {
                        SignalUsed(tx);
                    }
                }

                if (_rx is { } rx)
                {
                    DeliverInput(rx);
                }
            }
            catch (VirtqueueException e)
            {
                _rx = null;
                _tx = null;
                Fail(e.Message);
            }
        }

        return null;
    }

    private void DeliverInput(Virtqueue rx)
    {
        bool pushed = false;
        while (true)
        {
            if (_partial is null)
            {
                if (!_input.TryDequeue(out _partial))
                {
                    break;
                }

                _partialOffset = 0;
            }

            if (!rx.TryPop(_chain))
            {
                if (rx.ArmNotification())
                {
                    continue;
                }

                break;
            }

            int n = _chain.Write(0, _partial.AsSpan(_partialOffset));
            rx.Push(_chain.Head, (uint)n);
            pushed = true;
            _partialOffset += n;
            Interlocked.Add(ref _inputBytes, -n);
            if (_partialOffset == _partial.Length)
            {
                _partial = null;
            }
        }

        if (pushed)
        {
            SignalUsed(rx);
        }
    }

    public override VirtioDeviceState SaveState()
    {
        lock (_sync)
        {
            var pending = ImmutableArray.CreateBuilder<ImmutableArray<byte>>();
            if (_partial is not null)
            {
                pending.Add([.. _partial.AsSpan(_partialOffset)]);
            }

            foreach (var piece in _input)
            {
                pending.Add([.. piece]);
            }

            return new VirtioConsoleState(pending.ToImmutable());
        }
    }

    public override void RestoreState(VirtioDeviceState state)
    {
        var s = StateOf<VirtioConsoleState>(state);
        lock (_sync)
        {
            _input.Clear();
            _partial = null;
            _partialOffset = 0;
            foreach (var piece in s.PendingInput)
            {
                _input.Enqueue(piece.ToArray());
            }

            Volatile.Write(ref _inputBytes, s.PendingInput.Sum(p => p.Length));
        }
    }

    public override void Quiesce() => _worker.Quiesce();

    public override void Unquiesce() => _worker.Unquiesce();

    internal override bool Idle => _worker.Idle;

    public override bool Stopped => _worker.Stopped;

    public override void Dispose()
    {
        _worker.Dispose();
        base.Dispose();
    }
}
