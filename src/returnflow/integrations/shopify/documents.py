"""The GraphQL documents the Shopify adapter sends (Admin API, version :data:`API_VERSION`).

One document per port call; each names its operation so that a recorded answer, a log line or
a mock can tell them apart. The variables each takes are built in
:mod:`returnflow.integrations.shopify` and follow the input objects Shopify documents for the
version (``ReturnInput``, ``ReturnRequestInput``, ``ReturnProcessInput``,
``ReverseFulfillmentOrderDisposeInput``, ...).
"""

from __future__ import annotations

__all__ = [
    "API_VERSION",
    "APPROVE",
    "CALCULATE",
    "CANCEL",
    "CLOSE",
    "CREATE",
    "DECLINE",
    "DISPOSE",
    "PAY",
    "PROCESS",
    "READ",
    "READ_FOR_CALCULATE",
    "READ_FOR_PROCESS",
    "REFUND_PAYMENT",
    "REMOVE",
    "REOPEN",
    "REQUEST",
    "RETURNABLE",
]

API_VERSION = "2025-07"
"""The Admin API version the documents are written against (``returnProcess`` is new in it)."""

RETURN_FIELDS = """
fragment ReturnFields on Return {
  id
  status
  order {
    id
    totalOutstandingSet { shopMoney { amount currencyCode } }
    transactions(first: 50) {
      id
      kind
      status
      manualPaymentGateway
      amountSet { shopMoney { amount currencyCode } }
      parentTransaction { id }
    }
  }
  returnLineItems(first: 250) {
    nodes {
      id
      quantity
      processedQuantity
      unprocessedQuantity
      ... on ReturnLineItem { fulfillmentLineItem { id } }
    }
  }
  exchangeLineItems(first: 250) {
    nodes { id quantity processedQuantity unprocessedQuantity variantId }
  }
  refunds(first: 250) {
    nodes {
      id
      totalRefundedSet { shopMoney { amount currencyCode } }
      refundShippingLines(first: 50) {
        nodes {
          subtotalAmountSet { shopMoney { amount currencyCode } }
          taxAmountSet { shopMoney { amount currencyCode } }
        }
      }
      duties { amountSet { shopMoney { amount currencyCode } } }
    }
  }
}
"""
"""The fields of a return every document reads: its status, its order's balance and
transactions, its line items and exchange line items, and its refunds (by returnflow or by
a person in the admin: what they gave back for the lines is their total less the shipping
and duties given back)."""

CREATE = (
    """
mutation ReturnflowReturnCreate($returnInput: ReturnInput!) {
  returnCreate(returnInput: $returnInput) {
    return { ...ReturnFields }
    userErrors { field message code }
  }
}
"""
    + RETURN_FIELDS
)

REQUEST = (
    """
mutation ReturnflowReturnRequest($input: ReturnRequestInput!) {
  returnRequest(input: $input) {
    return { ...ReturnFields }
    userErrors { field message code }
  }
}
"""
    + RETURN_FIELDS
)

APPROVE = (
    """
mutation ReturnflowReturnApproveRequest($input: ReturnApproveRequestInput!) {
  returnApproveRequest(input: $input) {
    return { ...ReturnFields }
    userErrors { field message code }
  }
}
"""
    + RETURN_FIELDS
)

DECLINE = (
    """
mutation ReturnflowReturnDeclineRequest($input: ReturnDeclineRequestInput!) {
  returnDeclineRequest(input: $input) {
    return { ...ReturnFields }
    userErrors { field message code }
  }
}
"""
    + RETURN_FIELDS
)

PROCESS = (
    """
mutation ReturnflowReturnProcess($input: ReturnProcessInput!) {
  returnProcess(input: $input) {
    return { ...ReturnFields }
    userErrors { field message code }
  }
}
"""
    + RETURN_FIELDS
)

DISPOSE = """
mutation ReturnflowReverseFulfillmentOrderDispose(
  $dispositionInputs: [ReverseFulfillmentOrderDisposeInput!]!
) {
  reverseFulfillmentOrderDispose(dispositionInputs: $dispositionInputs) {
    reverseFulfillmentOrderLineItems { id }
    userErrors { field message code }
  }
}
"""

REMOVE = (
    """
mutation ReturnflowRemoveFromReturn(
  $returnId: ID!
  $returnLineItems: [ReturnLineItemRemoveFromReturnInput!]
  $exchangeLineItems: [ExchangeLineItemRemoveFromReturnInput!]
) {
  removeFromReturn(
    returnId: $returnId
    returnLineItems: $returnLineItems
    exchangeLineItems: $exchangeLineItems
  ) {
    return { ...ReturnFields }
    userErrors { field message code }
  }
}
"""
    + RETURN_FIELDS
)


PAY = """
mutation ReturnflowOrderCreateManualPayment($id: ID!, $amount: MoneyInput) {
  orderCreateManualPayment(id: $id, amount: $amount) {
    order { id }
    userErrors { field message code }
  }
}
"""

REFUND_PAYMENT = """
mutation ReturnflowRefundCreate($input: RefundInput!) {
  refundCreate(input: $input) {
    refund { id }
    userErrors { field message }
  }
}
"""
"""A refund on the order of manual payments (``RefundInput.transactions``: ``REFUND``
transactions whose parent is a payment ``PAY`` recorded), giving back a balance paid."""


def _status_change(operation: str, field: str) -> str:
    return (
        f"""
mutation {operation}($id: ID!) {{
  {field}(id: $id) {{
    return {{ ...ReturnFields }}
    userErrors {{ field message code }}
  }}
}}
"""
        + RETURN_FIELDS
    )


CLOSE = _status_change("ReturnflowReturnClose", "returnClose")
REOPEN = _status_change("ReturnflowReturnReopen", "returnReopen")
CANCEL = _status_change("ReturnflowReturnCancel", "returnCancel")

READ = (
    """
query ReturnflowReturn($id: ID!) {
  return(id: $id) {
    ...ReturnFields
    reverseFulfillmentOrders(first: 10) {
      nodes {
        lineItems(first: 250) {
          nodes { fulfillmentLineItem { id } dispositions { quantity type } }
        }
      }
    }
  }
}
"""
    + RETURN_FIELDS
)
"""A return as it is now, with the units disposed of and their kinds (its reverse
fulfillment order line items' ``dispositions``, given by returnflow or by a person in the
admin)."""

READ_FOR_PROCESS = (
    """
query ReturnflowReturnForProcess($id: ID!) {
  return(id: $id) {
    ...ReturnFields
    reverseFulfillmentOrders(first: 10) {
      nodes { lineItems(first: 250) { nodes { id fulfillmentLineItem { id } } } }
    }
    order {
      id
      transactions(first: 50) { id kind status }
    }
  }
}
"""
    + RETURN_FIELDS
)

READ_FOR_CALCULATE = """
query ReturnflowReturnForCalculate($id: ID!) {
  return(id: $id) {
    id
    order { id }
    returnLineItems(first: 250) {
      nodes {
        id
        quantity
        processedQuantity
        unprocessedQuantity
        ... on ReturnLineItem { fulfillmentLineItem { id } restockingFee { percentage } }
      }
    }
    exchangeLineItems(first: 250) {
      nodes { id quantity processedQuantity unprocessedQuantity variantId }
    }
    returnShippingFees {
      amountSet {
        shopMoney { amount currencyCode }
        presentmentMoney { amount currencyCode }
      }
    }
  }
}
"""

RETURNABLE = """
query ReturnflowReturnableFulfillments($orderId: ID!) {
  returnableFulfillments(orderId: $orderId, first: 50) {
    nodes {
      returnableFulfillmentLineItems(first: 250) {
        nodes {
          quantity
          fulfillmentLineItem {
            id
            lineItem {
              discountedUnitPriceAfterAllDiscountsSet { shopMoney { amount currencyCode } }
            }
          }
        }
      }
    }
  }
}
"""

CALCULATE = """
query ReturnflowReturnCalculate($input: CalculateReturnInput!) {
  returnCalculate(input: $input) {
    returnLineItems {
      fulfillmentLineItem { id }
      quantity
      subtotalSet { shopMoney { amount currencyCode } }
      restockingFee { amountSet { shopMoney { amount currencyCode } } }
    }
    exchangeLineItems {
      variant { id }
      quantity
      subtotalSet { shopMoney { amount currencyCode } }
    }
    returnShippingFee { amountSet { shopMoney { amount currencyCode } } }
  }
}
"""
