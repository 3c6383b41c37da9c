namespace HostVM.Storage;

/// <summary>
/// A drive's disk that a block job may change under the running guest: every request goes to <see cref="Current"/> under
/// one gate, and a job swaps the device, or copies a piece of it, while holding that gate (<see cref="Exclusive"/>), so a
/// guest request sees the chain wholly before or wholly after. While a commit runs, writes also go to a
/// <see cref="Mirror"/> (the layer being committed into), so that what the job copied stays up to date.
/// </summary>
public sealed class SwitchableBlockDevice(IBlockDevice initial) : IBlockDevice
{
    private readonly Lock _gate = new();
    private IBlockDevice _current = initial ?? throw new ArgumentNullException(nameof(initial));
    private IBlockDevice? _mirror;

    /// <summary>The device requests go to now.</summary>
    public IBlockDevice Current
    {
        get
        {
            lock (_gate)
            {
                return _current;
            }
        }
    }

    /// <summary>A device every write, discard and flush is repeated on (not owned: the current device's backing file).</summary>
    public IBlockDevice? Mirror
    {
        get
        {
            lock (_gate)
            {
                return _mirror;
            }
        }
    }

    public long Length => Current.Length;

    public bool ReadOnly => Current.ReadOnly;

    public string Identifier => Current.Identifier;

    /// <summary>Runs <paramref name="action"/> with no guest request in flight; it may <see cref="Replace"/> the device.</summary>
    public void Exclusive(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        lock (_gate)
        {
            action();
        }
    }

    /// <summary>Runs <paramref name="read"/> on the current device with no guest request in flight, and returns what it gives.</summary>
    public T With<T>(Func<IBlockDevice, T> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        lock (_gate)
        {
            return read(_current);
        }
    }

    /// <summary>Makes <paramref name="next"/> the device (the caller closes the old one) and <paramref name="mirror"/> its mirror.</summary>
    public void Replace(IBlockDevice next, IBlockDevice? mirror = null)
    {
        ArgumentNullException.ThrowIfNull(next);
        lock (_gate)
        {
            if (next.Length != _current.Length)
            {
                throw new ArgumentException($"The new device has {next.Length} bytes, the drive {_current.Length}: a drive keeps its size.", nameof(next));
            }

            _current = next;
            _mirror = mirror;
        }
    }

    public void Read(long offset, Span<byte> destination)
    {
        lock (_gate)
        {
            _current.Read(offset, destination);
        }
    }

    public void Read(long offset, IReadOnlyList<Memory<byte>> destinations)
    {
        lock (_gate)
        {
            _current.Read(offset, destinations);
        }
    }

    public void Write(long offset, IReadOnlyList<ReadOnlyMemory<byte>> sources)
    {
        lock (_gate)
        {
            _current.Write(offset, sources);
            _mirror?.Write(offset, sources);
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        lock (_gate)
        {
            _current.Write(offset, source);
            _mirror?.Write(offset, source);
        }
    }

    public void Flush()
    {
        lock (_gate)
        {
            _mirror?.Flush();
            _current.Flush();
        }
    }

    public void Discard(long offset, long length)
    {
        lock (_gate)
        {
            _current.Discard(offset, length);
            _mirror?.Discard(offset, length);
        }
    }

    public void WriteZeroes(long offset, long length, bool mayUnmap)
    {
        lock (_gate)
        {
            _current.WriteZeroes(offset, length, mayUnmap);
            _mirror?.WriteZeroes(offset, length, mayUnmap);
        }
    }

    /// <summary>Closes the current device (which owns its chain, the mirror included).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _current.Dispose();
        }
    }
}
