using HostVM.Networking;

namespace HostVM.Machine.Virtio;

/// <summary>
/// virtio-rng (Virtio 1.2 §5.4): fills every buffer the guest offers with bytes from the host's CSPRNG.
/// That is cheap and never blocks, so it is done on the kicking vCPU thread.
/// </summary>
public sealed class VirtioRng : VirtioDevice
{
    public const ushort QueueSize = 64;

    /// <summary>Bytes handed out per request at most (Linux asks for up to a page).</summary>
    public const int MaxRequest = 64 * 1024;

    private readonly Lock _sync = new();
    private readonly DescriptorChain _chain = new();
    private readonly byte[] _buffer = new byte[MaxRequest];
    private Virtqueue? _queue;
    private long _bytes;

    public VirtioRng()
        : base(VirtioDeviceType.Entropy, 1, QueueSize)
    {
    }

    public long BytesProvided => Interlocked.Read(ref _bytes);

    public override ulong DeviceFeatures => 0;

    public override int ConfigSize => 0;

    public override void ReadConfig(Span<byte> config)
    {
    }

    public override void Activate(VirtioActivation activation)
    {
        lock (_sync)
        {
            _queue = activation.Queues[0];
        }

        Notify(0);
    }

    public override void Reset()
    {
        lock (_sync)
        {
            _queue = null;
        }
    }

    public override VirtioDeviceState SaveState() => new VirtioRngState();

    public override void RestoreState(VirtioDeviceState state) => _ = StateOf<VirtioRngState>(state); // only checks the type

    public override void Notify(int queue)
    {
        lock (_sync)
        {
            if (_queue is not { } q)
            {
                return;
            }

            try
            {
                bool pushed = false;
                while (true)
                {
                    if (!q.TryPop(_chain))
                    {
                        if (q.ArmNotification())
                        {
                            continue; // more arrived while we asked to be told: serve them too
                        }

                        break;
                    }

                    int n = (int)Math.Min(_chain.WritableLength, MaxRequest);
                    KernelRandom.Fill(_buffer.AsSpan(0, n));
                    _chain.Write(0, _buffer.AsSpan(0, n));
                    q.Push(_chain.Head, (uint)n);
                    Interlocked.Add(ref _bytes, n);
                    pushed = true;
                }

                if (pushed)
                {
                    SignalUsed(q);
                }
            }
            catch (VirtqueueException e)
            {
                _queue = null;
                Fail(e.Message);
            }
        }
    }
}
