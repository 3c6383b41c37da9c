using System.Buffers.Binary;
using System.Text;

namespace HostVM.Machine.Tests.Boot;

/// <summary>A small, independent reader of DTBs, to check what FdtWriter produced.</summary>
internal static class FdtParser
{
    public sealed class Node(string name)
    {
        public string Name { get; } = name;

        public Dictionary<string, byte[]> Properties { get; } = [];

        public List<Node> Children { get; } = [];

        public Node Child(string name) => Children.Single(c => c.Name == name);

        public Node At(string path) =>
            path.Split('/', StringSplitOptions.RemoveEmptyEntries).Aggregate(this, (node, part) => node.Child(part));

        public uint[] Cells(string property)
        {
            byte[] value = Properties[property];
            Assert.Equal(0, value.Length % 4);
            return [.. Enumerable.Range(0, value.Length / 4).Select(i => BinaryPrimitives.ReadUInt32BigEndian(value.AsSpan(4 * i)))];
        }

        public string[] Strings(string property) =>
            Encoding.UTF8.GetString(Properties[property]).TrimEnd('\0').Split('\0');
    }

    public sealed record Blob(Node Root, List<(ulong Address, ulong Size)> Reservations, uint Version, uint BootCpu);

    public static Blob Parse(byte[] blob)
    {
        Assert.Equal(0xD00DFEEDu, BE32(blob, 0));
        Assert.Equal((uint)blob.Length, BE32(blob, 4));
        int structure = (int)BE32(blob, 8);
        int strings = (int)BE32(blob, 12);
        int reservations = (int)BE32(blob, 16);
        Assert.Equal(0, reservations % 8);
        Assert.Equal(0, structure % 4);
        Assert.Equal((uint)(blob.Length - strings), BE32(blob, 32));

        var reserved = new List<(ulong, ulong)>();
        for (int at = reservations; ; at += 16)
        {
            ulong address = BinaryPrimitives.ReadUInt64BigEndian(blob.AsSpan(at));
            ulong size = BinaryPrimitives.ReadUInt64BigEndian(blob.AsSpan(at + 8));
            if (address == 0 && size == 0)
            {
                break;
            }

            reserved.Add((address, size));
        }

        var stack = new Stack<Node>();
        Node? root = null;
        int p = structure;
        while (true)
        {
            uint token = BE32(blob, p);
            p += 4;
            switch (token)
            {
                case 1:
                    int end = Array.IndexOf(blob, (byte)0, p);
                    var node = new Node(Encoding.ASCII.GetString(blob, p, end - p));
                    p = Align(end + 1);
                    if (stack.Count == 0)
                    {
                        Assert.Null(root);
                        root = node;
                    }
                    else
                    {
                        stack.Peek().Children.Add(node);
                    }

                    stack.Push(node);
                    break;
                case 2:
                    stack.Pop();
                    break;
                case 3:
                    int length = (int)BE32(blob, p);
                    int nameOffset = (int)BE32(blob, p + 4);
                    int nameEnd = Array.IndexOf(blob, (byte)0, strings + nameOffset);
                    string name = Encoding.ASCII.GetString(blob, strings + nameOffset, nameEnd - strings - nameOffset);
                    stack.Peek().Properties.Add(name, blob.AsSpan(p + 8, length).ToArray());
                    p = Align(p + 8 + length);
                    break;
                case 9:
                    Assert.Empty(stack);
                    Assert.Equal(strings, p); // FDT_END is the last token
                    return new Blob(root!, reserved, BE32(blob, 20), BE32(blob, 28));
                default:
                    Assert.Fail($"Unexpected token {token} at {p - 4}");
                    break;
            }
        }
    }

    private static uint BE32(byte[] blob, int at) => BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(at));

    private static int Align(int at) => (at + 3) & ~3;
}
