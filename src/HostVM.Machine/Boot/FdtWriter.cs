using System.Buffers.Binary;
using System.Text;

namespace HostVM.Machine.Boot;

/// <summary>
/// Builds a flattened device tree blob (DTB, version 17, as the Devicetree Specification's chapter 5
/// describes): header, memory reservation block, structure block of node and property tokens, and a
/// strings block holding each property name once. Open the root with <c>BeginNode("")</c>, give each
/// node its properties before its child nodes, close every node, then call <see cref="ToArray"/>.
/// Property values are big-endian, as the format requires.
/// </summary>
public sealed class FdtWriter
{
    public const uint Magic = 0xD00D_FEED;
    public const uint Version = 17;
    public const uint LastCompatibleVersion = 16;

    private const uint BeginNodeToken = 0x1;
    private const uint EndNodeToken = 0x2;
    private const uint PropertyToken = 0x3;
    private const uint EndToken = 0x9;
    private const int HeaderSize = 40;
    private const int MaxNameLength = 31;

    private readonly List<byte> _structure = [];
    private readonly List<byte> _strings = [];
    private readonly Dictionary<string, int> _stringOffsets = new(StringComparer.Ordinal);
    private readonly List<(ulong Address, ulong Size)> _reservations = [];
    private readonly Stack<OpenNode> _open = new();
    private bool _rootDone;
    private uint _lastPhandle;

    /// <summary>The header's boot_cpuid_phys: the hart that boots.</summary>
    public uint BootCpuId { get; set; }

    /// <summary>A fresh phandle value (1, 2, 3, ...) for a node to carry in its "phandle" property.</summary>
    public uint AllocatePhandle() => ++_lastPhandle;

    /// <summary>Splits 64-bit values into pairs of cells (high, low), for #address-cells/#size-cells = 2.</summary>
    public static uint[] Cells64(params ulong[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var cells = new uint[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
        {
            cells[2 * i] = (uint)(values[i] >> 32);
            cells[(2 * i) + 1] = (uint)values[i];
        }

        return cells;
    }

    /// <summary>Adds an entry to the memory reservation block (memory the OS must not use).</summary>
    public void AddMemoryReservation(ulong address, ulong size)
    {
        if (size == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(size), "A memory reservation must not be empty.");
        }

        _reservations.Add((address, size));
    }

    /// <summary>Opens a node; the first node is the root and has the empty name.</summary>
    public void BeginNode(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_open.Count == 0)
        {
            if (_rootDone)
            {
                throw new InvalidOperationException("The device tree already has a root node; a blob has exactly one.");
            }

            if (name.Length != 0)
            {
                throw new ArgumentException($"The root node's name is empty, not \"{name}\".", nameof(name));
            }
        }
        else
        {
            ValidateNodeName(name);
            var parent = _open.Peek();
            if (!parent.ChildNames.Add(name))
            {
                throw new InvalidOperationException($"Node {parent.Path} already has a child named \"{name}\".");
            }

            parent.HasChildren = true;
        }

        AppendUInt32(_structure, BeginNodeToken);
        _structure.AddRange(Encoding.ASCII.GetBytes(name));
        _structure.Add(0);
        Pad(_structure);
        string path = _open.Count == 0 ? "/" : _open.Peek().Path.TrimEnd('/') + "/" + name;
        _open.Push(new OpenNode(path));
    }

    public void EndNode()
    {
        if (_open.Count == 0)
        {
            throw new InvalidOperationException("EndNode without an open node.");
        }

        _open.Pop();
        AppendUInt32(_structure, EndNodeToken);
        if (_open.Count == 0)
        {
            _rootDone = true;
        }
    }

    /// <summary>A property with no value (a flag such as "interrupt-controller" or "ranges").</summary>
    public void Property(string name) => AddProperty(name, []);

    /// <summary>A one-cell property.</summary>
    public void Property(string name, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        AddProperty(name, bytes);
    }

    /// <summary>A two-cell (64-bit) property.</summary>
    public void Property(string name, ulong value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        AddProperty(name, bytes);
    }

    /// <summary>A property of 32-bit cells (a prop-encoded-array such as "reg" or "interrupts-extended").</summary>
    public void Property(string name, params uint[] cells)
    {
        ArgumentNullException.ThrowIfNull(cells);
        var bytes = new byte[cells.Length * 4];
        for (int i = 0; i < cells.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4 * i), cells[i]);
        }

        AddProperty(name, bytes);
    }

    /// <summary>A NUL-terminated string property.</summary>
    public void Property(string name, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Property(name, [value]);
    }

    /// <summary>A string-list property: each string NUL-terminated, one after another ("compatible").</summary>
    public void Property(string name, params string[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var bytes = new List<byte>();
        foreach (string value in values)
        {
            if (value.Contains('\0', StringComparison.Ordinal))
            {
                throw new ArgumentException($"Property \"{name}\": a string may not contain NUL.", nameof(values));
            }

            bytes.AddRange(Encoding.UTF8.GetBytes(value));
            bytes.Add(0);
        }

        AddProperty(name, [.. bytes]);
    }

    /// <summary>A property with raw bytes as its value.</summary>
    public void Property(string name, ReadOnlySpan<byte> value) => AddProperty(name, value);

    /// <summary>The finished blob.</summary>
    public byte[] ToArray()
    {
        if (!_rootDone || _open.Count != 0)
        {
            throw new InvalidOperationException(
                _open.Count != 0 ? $"Node {_open.Peek().Path} is still open: call EndNode for every BeginNode." : "The device tree has no root node.");
        }

        var structure = new List<byte>(_structure);
        AppendUInt32(structure, EndToken);

        int reservationOffset = HeaderSize; // already 8-byte aligned, as the block must be
        int reservationSize = (_reservations.Count + 1) * 16;
        int structureOffset = reservationOffset + reservationSize;
        int stringsOffset = structureOffset + structure.Count;
        int totalSize = stringsOffset + _strings.Count;

        var blob = new byte[totalSize];
        var header = blob.AsSpan();
        BinaryPrimitives.WriteUInt32BigEndian(header[0..], Magic);
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], (uint)totalSize);
        BinaryPrimitives.WriteUInt32BigEndian(header[8..], (uint)structureOffset);
        BinaryPrimitives.WriteUInt32BigEndian(header[12..], (uint)stringsOffset);
        BinaryPrimitives.WriteUInt32BigEndian(header[16..], (uint)reservationOffset);
        BinaryPrimitives.WriteUInt32BigEndian(header[20..], Version);
        BinaryPrimitives.WriteUInt32BigEndian(header[24..], LastCompatibleVersion);
        BinaryPrimitives.WriteUInt32BigEndian(header[28..], BootCpuId);
        BinaryPrimitives.WriteUInt32BigEndian(header[32..], (uint)_strings.Count);
        BinaryPrimitives.WriteUInt32BigEndian(header[36..], (uint)structure.Count);

        for (int i = 0; i < _reservations.Count; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(blob.AsSpan(reservationOffset + (16 * i)), _reservations[i].Address);
            BinaryPrimitives.WriteUInt64BigEndian(blob.AsSpan(reservationOffset + (16 * i) + 8), _reservations[i].Size);
        }

        // The terminating all-zero reservation entry is already zero.
        structure.CopyTo(blob, structureOffset);
        _strings.CopyTo(blob, stringsOffset);
        return blob;
    }

    private void AddProperty(string name, ReadOnlySpan<byte> value)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_open.Count == 0)
        {
            throw new InvalidOperationException($"Property \"{name}\" outside any node: call BeginNode first.");
        }

        ValidatePropertyName(name);
        var node = _open.Peek();
        if (node.HasChildren)
        {
            throw new InvalidOperationException($"Property \"{name}\" of {node.Path} comes after a child node; the format needs properties first.");
        }

        if (!node.PropertyNames.Add(name))
        {
            throw new InvalidOperationException($"Node {node.Path} already has a property \"{name}\".");
        }

        AppendUInt32(_structure, PropertyToken);
        AppendUInt32(_structure, (uint)value.Length);
        AppendUInt32(_structure, (uint)StringOffset(name));
        _structure.AddRange(value);
        Pad(_structure);
    }

    /// <summary>Where <paramref name="name"/> sits in the strings block, adding it the first time.</summary>
    private int StringOffset(string name)
    {
        if (!_stringOffsets.TryGetValue(name, out int offset))
        {
            offset = _strings.Count;
            _strings.AddRange(Encoding.ASCII.GetBytes(name));
            _strings.Add(0);
            _stringOffsets.Add(name, offset);
        }

        return offset;
    }

    private static void ValidateNodeName(string name)
    {
        int at = name.IndexOf('@', StringComparison.Ordinal);
        string nodeName = at < 0 ? name : name[..at];
        string unitAddress = at < 0 ? string.Empty : name[(at + 1)..];
        if (nodeName.Length == 0 || nodeName.Length > MaxNameLength || (at >= 0 && unitAddress.Length == 0) ||
            !nodeName.All(c => char.IsAsciiLetterOrDigit(c) || c is ',' or '.' or '_' or '+' or '-') ||
            !unitAddress.All(c => char.IsAsciiLetterOrDigit(c) || c is ',' or '.' or '_' or '+' or '-'))
        {
            throw new ArgumentException(
                $"\"{name}\" is not a device tree node name (1-31 of [0-9a-zA-Z,._+-], then optionally @unit-address).", nameof(name));
        }
    }

    private static void ValidatePropertyName(string name)
    {
        if (name.Length == 0 || name.Length > MaxNameLength ||
            !name.All(c => char.IsAsciiLetterOrDigit(c) || c is ',' or '.' or '_' or '+' or '?' or '#' or '-'))
        {
            throw new ArgumentException($"\"{name}\" is not a device tree property name (1-31 of [0-9a-zA-Z,._+?#-]).", nameof(name));
        }
    }

    private static void AppendUInt32(List<byte> block, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        block.AddRange(bytes);
    }

    private static void Pad(List<byte> block)
    {
        while (block.Count % 4 != 0)
        {
            block.Add(0);
        }
    }

    private sealed class OpenNode(string path)
    {
        public string Path { get; } = path;

        public HashSet<string> PropertyNames { get; } = new(StringComparer.Ordinal);

        public HashSet<string> ChildNames { get; } = new(StringComparer.Ordinal);

        public bool HasChildren { get; set; }
    }
}
