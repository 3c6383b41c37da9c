using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace HostVM.Networking.UserNet;

/// <summary>
/// Answers the guest's DNS queries from the host's own resolver (System.Net.Dns) when the host has
/// no name server to forward to. Only A queries get answers; other types get an empty NOERROR
/// answer, and names the host cannot resolve get NXDOMAIN.
/// </summary>
internal sealed class HostDnsResolver(UserNetwork network)
{
    private const int HeaderLength = 12;
    private const int MaxOutstanding = 64;
    private const int MaxAnswers = 16;
    private const ushort TypeA = 1;
    private const ushort ClassIn = 1;
    private int _outstanding;

    public bool Handle(FlowKey key, ReadOnlySpan<byte> query)
    {
        if (query.Length < HeaderLength || (query[2] & 0xf8) != 0 ||
            BinaryPrimitives.ReadUInt16BigEndian(query[4..]) != 1 || _outstanding >= MaxOutstanding)
        {
            // Not a standard query with one question (or too many in flight): ignore it, as a busy server would.
            return false;
        }

        var name = new StringBuilder();
        int i = HeaderLength;
        while (true)
        {
            if (i >= query.Length)
            {
                return false;
            }

            int label = query[i++];
            if (label == 0)
            {
                break;
            }

            if (label > 63 || i + label > query.Length || name.Length + label > 253)
            {
                return false;
            }

            if (name.Length > 0)
            {
                name.Append('.');
            }

            name.Append(Encoding.ASCII.GetString(query.Slice(i, label)));
            i += label;
        }

        if (i + 4 > query.Length)
        {
            return false;
        }

        ushort type = BinaryPrimitives.ReadUInt16BigEndian(query[i..]);
        ushort @class = BinaryPrimitives.ReadUInt16BigEndian(query[(i + 2)..]);
        byte[] question = query[..(i + 4)].ToArray();
        _outstanding++;
        _ = ResolveAsync(key, question, name.ToString(), type == TypeA && @class == ClassIn);
        return true;
    }

    private async Task ResolveAsync(FlowKey key, byte[] question, string name, bool wantsAddresses)
    {
        // Started with the network's lock held: leave this thread first, so a socket operation that
        // completes synchronously cannot re-enter the lock and deliver frames from under it.
        await Task.Yield();
        IPAddress[] addresses = [];
        bool found = true;
        if (wantsAddresses && name.Length > 0)
        {
            try
            {
                addresses = await Dns.GetHostAddressesAsync(name, AddressFamily.InterNetwork).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                found = false;
            }
            catch (ArgumentException)
            {
                found = false;
            }
        }

        int count = Math.Min(addresses.Length, MaxAnswers);
        byte[] response = new byte[question.Length + (count * 16)];
        question.CopyTo(response, 0);
        // QR, the client's opcode and RD, RA; rcode 3 (NXDOMAIN) when the name does not resolve.
        response[2] = (byte)(0x80 | (question[2] & 0x79));
        response[3] = (byte)(0x80 | (found ? 0 : 3));
        BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(6), (ushort)count);
        BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(10), 0);
        int o = question.Length;
        for (int a = 0; a < count; a++)
        {
            var answer = response.AsSpan(o, 16);
            BinaryPrimitives.WriteUInt16BigEndian(answer, 0xc00c); // name: pointer to the question
            BinaryPrimitives.WriteUInt16BigEndian(answer[2..], TypeA);
            BinaryPrimitives.WriteUInt16BigEndian(answer[4..], ClassIn);
            BinaryPrimitives.WriteUInt32BigEndian(answer[6..], 60);
            BinaryPrimitives.WriteUInt16BigEndian(answer[10..], 4);
            BinaryPrimitives.WriteUInt32BigEndian(answer[12..], Ipv4.FromAddress(addresses[a]));
            o += 16;
        }

        lock (network.Gate)
        {
            _outstanding--;
            if (network.IsDisposed)
            {
                return;
            }

            network.SendUdpToGuest(key.RemoteAddress, key.RemotePort, key.GuestAddress, key.GuestPort, response);
        }

        network.Flush();
    }
}
